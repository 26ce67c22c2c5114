"""What the use cases need from the outside world; adapters implement these.

One home, split by concern: ``inbox`` (stored deliveries), ``repositories`` (storage and the
unit of work), ``peers`` (the provisioning API, the CRM's and Stripe's APIs, the dispatch
lock), ``translation`` (what a delivery says, per source) and ``context`` (the rules, the
clock and where follow-up work goes). Import from ``services.ports``.
"""

from services.ports.context import Clock, OutgoingPolicy, ProvisioningPolicy, Publisher, ServiceContext
from services.ports.inbox import DeliveryStore, Handled, InboxEvent, InboxRepository, Outcome
from services.ports.metrics import Metrics, NoMetrics
from services.ports.outgoing import (
    DeliveryAttempt,
    DeliveryState,
    Lane,
    OutboxRepository,
    PendingDelivery,
    SendOutcome,
    Subscriber,
    Subscription,
    SubscriptionRepository,
)
from services.ports.peers import (
    CrmWriteOutcome,
    CrmWriter,
    DispatchLock,
    DispatchMark,
    DisputeCustomers,
    HeldAccount,
    ListedEvent,
    PeerUnavailable,
    Provisioner,
    RowReader,
    SendResult,
    StorageUnavailable,
    StripeEventList,
)
from services.ports.repositories import (
    AccountRepository,
    CustomerMapping,
    CustomerRepository,
    DisputeRepository,
    InvoiceRepository,
    ProvisioningRepository,
    TimelineRecord,
    TimelineRepository,
    TokenRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)
from services.ports.translation import (
    CrmChange,
    CrmTranslator,
    CustomerDetails,
    IncompleteCrmEvent,
    StripeChange,
    StripeTranslator,
)

__all__ = [
    "AccountRepository",
    "Clock",
    "CrmChange",
    "CrmTranslator",
    "CrmWriteOutcome",
    "CrmWriter",
    "CustomerDetails",
    "CustomerMapping",
    "CustomerRepository",
    "DeliveryAttempt",
    "DeliveryState",
    "DeliveryStore",
    "DispatchLock",
    "DispatchMark",
    "DisputeCustomers",
    "DisputeRepository",
    "Handled",
    "HeldAccount",
    "InboxEvent",
    "InboxRepository",
    "IncompleteCrmEvent",
    "InvoiceRepository",
    "Lane",
    "ListedEvent",
    "Metrics",
    "NoMetrics",
    "OutboxRepository",
    "Outcome",
    "OutgoingPolicy",
    "PeerUnavailable",
    "PendingDelivery",
    "Provisioner",
    "ProvisioningPolicy",
    "ProvisioningRepository",
    "Publisher",
    "RowReader",
    "SendOutcome",
    "SendResult",
    "ServiceContext",
    "StorageUnavailable",
    "StripeChange",
    "StripeEventList",
    "StripeTranslator",
    "Subscriber",
    "Subscription",
    "SubscriptionRepository",
    "TimelineRecord",
    "TimelineRepository",
    "TokenRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
]
