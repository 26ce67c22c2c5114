"""Dataverse webhook bodies: every recorded body parses, values convert, bad bodies are refused in a sentence."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.dynamics_body import NotAContext
from adapters.dynamics_context import ExecutionContext, parse_context
from adapters.dynamics_rows import Entity, EntityReference, OptionSet
from adapters.dynamics_values import parse_dynamics_date
from tests.dynamics_bodies import (
    FIXTURES,
    MONEY_TYPE,
    REFERENCE_TYPE,
    account_create_named,
    account_delete,
    document,
    encode,
    fixture_names,
    recorded,
    set_attribute,
    target_attributes,
    with_parents,
)

ACCOUNT_CREATE = "account_create_sync_postoperation.json"
ACCOUNT_UPDATE = "account_update_sync_postoperation.json"
ALLFIELDS = "allfields_create_sync_postoperation.json"
ALLTYPES = "alltypes_create_async_postoperation.json"
CUSTOMACTIVITY = "customactivity_update_async_pre_post_images.json"
MSDOCS = "msdocs_contact_update_async_postoperation.json"
SHAREPOINT = "sharepointdocumentlocation_create_async_postimage.json"


def parsed(name: str) -> ExecutionContext:
    return parse_context(recorded(name))


def target_of(context: ExecutionContext) -> Entity:
    assert isinstance(context.target, Entity)
    return context.target


def refusal(raw: bytes, **options: Any) -> str:
    with pytest.raises(NotAContext) as caught:
        parse_context(raw, **options)
    return str(caught.value)


# --- Every recorded body -------------------------------------------------------------------------


def test_the_recorded_bodies_are_all_there() -> None:
    assert fixture_names() == sorted(
        [ACCOUNT_CREATE, ACCOUNT_UPDATE, ALLFIELDS, ALLTYPES, CUSTOMACTIVITY, MSDOCS, SHAREPOINT]
    ), f"fixtures changed in {FIXTURES}: give each new one its own assertions"


@pytest.mark.parametrize("name", fixture_names())
def test_every_recorded_body_parses_into_a_context_about_its_primary_row(name: str) -> None:
    context = parsed(name)
    target = target_of(context)
    assert context.message_name in {"Create", "Update"}
    assert target.logical_name == context.primary_entity_name
    assert target.id == context.primary_entity_id
    assert context.operation_created_on is not None
    assert context.operation_created_on.tzinfo is UTC
    assert context.stage == 40 and context.depth == 1
    assert context.parent is not None and context.parent.parent is None
    assert context.size_exceeded is False


# --- account Create (webhook.site capture, 2024) ------------------------------------------------


def test_an_account_create_names_the_message_the_table_and_the_new_row() -> None:
    context = parsed(ACCOUNT_CREATE)
    target = target_of(context)
    assert (context.message_name, context.primary_entity_name) == ("Create", "account")
    assert (context.mode, context.stage, context.depth) == (0, 40, 1)
    assert target.get("accountid") == "53c52f26-a89d-ef11-8a69-000d3a30b0c1"
    assert target.id == context.primary_entity_id == "53c52f26-a89d-ef11-8a69-000d3a30b0c1"
    assert context.output_parameters["id"] == "53c52f26-a89d-ef11-8a69-000d3a30b0c1"
    assert context.operation_id == context.request_id == "f8a13ba5-d91d-4dd5-936c-7f3b6d6adb95"
    assert context.correlation_id == "7038a274-4877-4f3f-a57a-0f4493a647c6"
    assert context.user_id == context.initiating_user_id == "3570e963-e69c-ef11-8a6b-000d3a318589"
    assert context.business_unit_id == "0669e963-e69c-ef11-8a6b-000d3a318589"
    assert context.organization_id == "f42a590d-a29d-ef11-8a66-6045bd056902"
    assert context.organization_name == "unqf42a590da29def118a666045bd056"
    assert context.owning_extension == EntityReference(
        "sdkmessageprocessingstep", "a89a1ed8-a79d-ef11-8a69-000d3a30b0c1", "webhook.site test: Create of account"
    )


def test_an_account_create_carries_creditonhold_false_as_a_boolean() -> None:
    target = target_of(parsed(ACCOUNT_CREATE))
    assert target.get("creditonhold") is False
    assert target.formatted_values["creditonhold"] == "No"
    assert target.get("followemail") is True


def test_the_operation_created_on_of_an_account_create_is_its_utc_instant() -> None:
    context = parsed(ACCOUNT_CREATE)
    assert context.operation_created_on == datetime(2024, 11, 8, 8, 5, 6, 922000, tzinfo=UTC)
    assert context.parent is not None
    assert context.parent.operation_created_on == datetime(2024, 11, 8, 8, 5, 6, 906000, tzinfo=UTC)
    assert target_of(context).get("createdon") == datetime(2024, 11, 8, 8, 5, 6, tzinfo=UTC)


def test_the_mojibake_name_of_the_recorded_account_is_left_as_it_came() -> None:
    # The capture is UTF-8 text that was once read as cp1252 (SOURCES.md): the parser does
    # not guess at repairs, it returns exactly the text of the body.
    as_recorded = next(pair["value"] for pair in target_attributes(document(ACCOUNT_CREATE)) if pair["key"] == "name")
    name = target_of(parsed(ACCOUNT_CREATE)).get("name")
    assert name == as_recorded
    assert name.startswith("Ð")
    assert not any("\u0400" <= character <= "\u04ff" for character in name)  # no Cyrillic appeared


def test_an_account_create_converts_lookups_choices_and_keeps_cleared_columns() -> None:
    context = parsed(ACCOUNT_CREATE)
    target = target_of(context)
    assert target.get("ownerid") == EntityReference("systemuser", "3570e963-e69c-ef11-8a6b-000d3a318589", None)
    assert target.get("transactioncurrencyid").logical_name == "transactioncurrency"
    assert target.get("statecode") == OptionSet(0)
    assert target.get("customersizecode") == OptionSet(1)
    assert target.get("exchangerate") == 1 and isinstance(target.get("exchangerate"), int)
    assert "modifiedonbehalfby" in target.attributes and target.get("modifiedonbehalfby") is None
    assert target.get("processid") == "00000000-0000-0000-0000-000000000000"  # a column value stays as sent
    assert context.parent is not None
    assert context.parent.stage == 30
    assert context.parent.input_parameters["x-ms-app-name"] == "new_Account"
    assert context.parent.input_parameters["SuppressDuplicateDetection"] is False
    assert context.parent.shared_variables["ChangedEntityTypes"] == (("account", "Update"),)
    assert context.shared_variables["AcceptLang"] == "en-US,en;q=0.9,lv;q=0.8"


# --- account Update (2018) ------------------------------------------------------------------------


def test_an_account_update_carries_only_the_changed_column_and_the_bookkeeping_ones() -> None:
    context = parsed(ACCOUNT_UPDATE)
    target = target_of(context)
    assert (context.message_name, context.primary_entity_name) == ("Update", "account")
    assert set(target.attributes) == {"telephone1", "accountid", "modifiedon", "modifiedby", "modifiedonbehalfby"}
    assert target.get("telephone1") == "1111"
    assert target.get("accountid") == "ec4e2f7d-9d60-e811-a95a-000d3af24950"
    assert target.get("modifiedon") == datetime(2018, 5, 31, 9, 5, 24, tzinfo=UTC)
    assert target.get("modifiedby") == EntityReference("systemuser", "df010dad-f103-4589-ba66-76a5a04c2a11", None)
    assert "creditonhold" not in target.attributes and target.get("creditonhold") is None
    assert target.get("creditonhold", "unchanged") == "unchanged"
    assert target.formatted_values == {}


def test_the_escaped_dates_of_an_account_update_are_read() -> None:
    assert b"\\/Date(1527757530151)\\/" in recorded(ACCOUNT_UPDATE)
    context = parsed(ACCOUNT_UPDATE)
    assert context.operation_created_on == datetime(2018, 5, 31, 9, 5, 30, 151000, tzinfo=UTC)
    assert context.shared_variables == {}
    assert context.pre_images == {} and context.post_images == {}


# --- every attribute type (albxrm_alltypes) -------------------------------------------------------


def test_money_is_an_exact_decimal() -> None:
    target = target_of(parsed(ALLTYPES))
    assert target.get("albxrm_currency") == Decimal("2154.32")
    assert str(target.get("albxrm_currency")) == "2154.32"
    assert target.get("albxrm_currency_base") == Decimal("2154.32")


def test_choices_lookups_and_plain_values_convert_to_their_types() -> None:
    target = target_of(parsed(ALLTYPES))
    assert target.get("albxrm_optionset") == OptionSet(257760001)
    assert target.get("albxrm_multiselectoptionset") == (OptionSet(257760001), OptionSet(257760002))
    assert target.get("albxrm_lookupaccount") == EntityReference("account", "b76b3f4b-1be7-e611-8101-e0071b6af231")
    assert target.get("albxrm_customer") == EntityReference("account", "ad6b3f4b-1be7-e611-8101-e0071b6af231")
    assert target.get("albxrm_twooptions") is True
    assert target.get("albxrm_wholenumber") == 987654321
    assert target.get("albxrm_decimal") == Decimal("10.01")
    assert target.get("albxrm_float") == Decimal("2365.12")
    assert target.get("exchangerate") == Decimal("1.0000000000")
    assert target.get("albxrm_multiplelinesoftext") == "sdafasf\nasdfas\nafsd"
    assert target.get("albxrm_alltypesid") == "44bfc2a7-903e-eb11-a813-000d3ad9c2e1"


def test_dates_are_aware_utc_datetimes_matching_their_formatted_values() -> None:
    context = parsed(ALLTYPES)
    target = target_of(context)
    assert target.get("albxrm_dateandtime") == datetime(2020, 12, 15, 7, 0, tzinfo=UTC)
    assert target.get("albxrm_dateandtime") == datetime.fromisoformat(target.formatted_values["albxrm_dateandtime"])
    assert target.get("createdon") == datetime(2020, 12, 15, 4, 47, 38, tzinfo=UTC)
    assert context.operation_created_on == datetime(2020, 12, 15, 4, 47, 38, tzinfo=UTC)  # "+0000"


def test_formatted_values_are_kept_as_text() -> None:
    context = parsed(ALLTYPES)
    formatted = target_of(context).formatted_values
    assert formatted["albxrm_multiselectoptionset"] == "Value 1; Value 2"
    assert formatted["albxrm_optionset"] == "Value 2"
    assert formatted["albxrm_wholenumber"] == "987,654,321"
    assert formatted["albxrm_currency"].endswith("2,154.32")  # its € sign is mojibake upstream
    image = context.post_images["AsynchronousStepPrimaryName"]
    assert (image.logical_name, image.get("albxrm_name")) == ("albxrm_alltypes", "Test Betim")
    assert context.mode == 1


def test_a_whole_money_amount_is_a_decimal_too() -> None:
    target = target_of(parsed(ALLFIELDS))
    assert target.get("shko_currency") == Decimal("100") and isinstance(target.get("shko_currency"), Decimal)
    assert target.get("shko_choices") == (OptionSet(342490001), OptionSet(342490002))
    assert target.get("shko_choice") == OptionSet(342490000)
    assert target.get("shko_decimal") == Decimal("10.12")
    assert target.get("shko_lookup") == EntityReference("systemuser", "c7877889-0f5f-ee11-8def-000d3adbef1f")
    assert target.get("shko_datetime") == datetime(2023, 10, 17, 7, 0, tzinfo=UTC)


# --- custom activity Update with a pre-image ------------------------------------------------------


def test_the_pre_image_named_image_has_its_seven_columns() -> None:
    context = parsed(CUSTOMACTIVITY)
    image = context.pre_images["Image"]
    assert set(context.pre_images) == {"Image"}
    assert image.logical_name == "new_customactivity"
    assert image.id == "841579d9-7e63-ef11-9e4a-00155d0001ea"
    assert set(image.attributes) == {
        "statecode",
        "description",
        "from",
        "regardingobjectid",
        "statuscode",
        "subject",
        "to",
    }
    assert image.get("statecode") == OptionSet(0)
    assert target_of(context).get("statecode") == OptionSet(3)  # the change: before and after
    assert image.get("regardingobjectid") == EntityReference(
        "new_otherentity", "8b1579d9-7e63-ef11-9e4a-00155d0001ea", "Other entity name"
    )
    assert image.formatted_values == {
        "statecode": "Open",
        "regardingobjectid": "Other entity name",
        "statuscode": "Open",
    }


def test_activity_parties_are_an_entity_collection() -> None:
    image = parsed(CUSTOMACTIVITY).pre_images["Image"]
    (sender,) = image.get("from")
    (recipient,) = image.get("to")
    assert isinstance(sender, Entity) and sender.logical_name == "activityparty"
    assert sender.get("partyid") == EntityReference("contact", "a76c0a41-4dec-ea11-a2d1-00155d04e323", "Some Contact")
    assert sender.get("participationtypemask") == OptionSet(1)
    assert sender.get("scheduledend") == datetime(2024, 8, 26, 19, 43, 14, tzinfo=UTC)
    assert sender.formatted_values["participationtypemask"] == "Sender"
    assert recipient.get("partyid") == EntityReference("queue", "64b14206-8fbb-e611-80ef-005056bd19ee", "Queue Name")


def test_an_operation_created_on_with_a_plus_three_hours_offset_is_the_utc_instant_of_its_milliseconds() -> None:
    context = parsed(CUSTOMACTIVITY)
    # "\/Date(1724647396000+0300)\/": 1724647396000 ms after the epoch in UTC; the offset
    # records the sender's zone and does not move the instant.
    assert context.operation_created_on == datetime(2024, 8, 26, 4, 43, 16, tzinfo=UTC)
    # Read that way, this on-premises capture's OperationCreatedOn is exactly the offset
    # (3 h) before its own Target's modifiedon; the sharepoint (+0200) and msdocs (-0700)
    # bodies show the same gap. Do not order events by OperationCreatedOn against row dates.
    assert target_of(context).get("modifiedon") - context.operation_created_on == timedelta(hours=3)


def test_the_parent_of_the_custom_activity_update_carries_its_state_change() -> None:
    parent = parsed(CUSTOMACTIVITY).parent
    assert parent is not None
    assert parent.target is None  # no Target: an EntityMoniker
    assert parent.input_parameters["EntityMoniker"] == EntityReference(
        "new_customactivity", "841579d9-7e63-ef11-9e4a-00155d0001ea"
    )
    assert parent.input_parameters["State"] == OptionSet(3)
    assert parent.input_parameters["Status"] == OptionSet(4)


# --- sharepointdocumentlocation Create with a named post-image -----------------------------------


def test_the_post_image_named_postimage_and_the_parent_context_are_read() -> None:
    context = parsed(SHAREPOINT)
    assert set(context.post_images) == {"PostImage", "AsynchronousStepPrimaryName"}
    image = context.post_images["PostImage"]
    assert len(image.attributes) == 8
    assert image.get("regardingobjectid") == EntityReference(
        "account", "0a3839b3-08d4-ef11-aeb0-00155d000101", "Mini test"
    )
    assert image.get("ownerid") == EntityReference("systemuser", "30c91177-9436-4042-ad53-dd966d490114", "Name")
    assert image.get("statuscode") == OptionSet(1)
    assert image.formatted_values["parentsiteorlocation"] == "account"
    assert context.operation_created_on == datetime(2025, 1, 16, 10, 52, 16, tzinfo=UTC)  # "+0200"
    assert context.parent is not None
    assert (context.parent.primary_entity_name, context.parent.stage) == ("sharepointdocument", 30)


def test_a_value_of_a_type_holdfast_does_not_read_is_kept_read_only_as_given() -> None:
    parent = parsed(SHAREPOINT).parent
    assert parent is not None
    query = parent.input_parameters["Query"]
    assert query["__type"].startswith("QueryExpression:")
    assert query["EntityName"] == "sharepointdocument"
    assert query["ColumnSet"]["Columns"][:2] == ("documentid", "fullname")
    assert query["Criteria"]["Conditions"][2]["Values"] == ("0a3839b3-08d4-ef11-aeb0-00155d000101",)
    with pytest.raises(TypeError):
        query["EntityName"] = "other"
    assert parent.input_parameters["AppModuleId"] == "00000000-0000-0000-0000-000000000000"


# --- the Microsoft Learn example (contact Update) -------------------------------------------------


def test_the_microsoft_docs_contact_update_parses() -> None:
    context = parsed(MSDOCS)
    target = target_of(context)
    assert (context.message_name, context.primary_entity_name, context.mode) == ("Update", "contact", 1)
    assert target.get("firstname") == "James"
    assert target.get("modifiedon") == datetime(2017, 9, 26, 0, 4, 7, tzinfo=UTC)
    assert context.operation_created_on == datetime(2017, 9, 26, 7, 4, 8, tzinfo=UTC)  # "-0700"
    assert context.request_id is None  # "RequestId": null
    assert context.post_images["AsynchronousStepPrimaryName"].get("fullname") == "James Glynn (sample)"
    assert context.parent is not None
    assert context.parent.organization_name == "OneFarm"
    changed = dict(context.parent.shared_variables["ChangedEntityTypes"])
    assert changed["salesorder"] == "Update" and len(changed) == 14


# --- conversions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("/Date(1527757530151)/", datetime(2018, 5, 31, 9, 5, 30, 151000, tzinfo=UTC)),
        ("\\/Date(1608007658000+0000)\\/", datetime(2020, 12, 15, 4, 47, 38, tzinfo=UTC)),
        ("/Date(1724647396000+0300)/", datetime(2024, 8, 26, 4, 43, 16, tzinfo=UTC)),
        ("/Date(1506409448000-0700)/", datetime(2017, 9, 26, 7, 4, 8, tzinfo=UTC)),
        ("/Date(0)/", datetime(1970, 1, 1, tzinfo=UTC)),
        ("/Date(-86400001)/", datetime(1969, 12, 30, 23, 59, 59, 999000, tzinfo=UTC)),
        ("/Date(-62135596800000)/", datetime(1, 1, 1, tzinfo=UTC)),  # .NET's DateTime.MinValue
    ],
)
def test_a_dynamics_date_is_the_utc_instant_of_its_milliseconds(text: str, instant: datetime) -> None:
    parsed_date = parse_dynamics_date(text)
    assert parsed_date == instant
    assert parsed_date.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-11-08T08:05:06Z",
        "/Date()/",
        "/Date(12.5)/",
        "/Date(1e3)/",
        "Date(1)",
        "/Date(1)",
        "/Date(1+030)/",
        "/Date(1+2460)/",
        "/Date(١٢٣)/",  # digits, but not ASCII ones
        "/Date(9999999999999999)/",
        "/Date(999999999999999)/",  # past the year 9999
    ],
)
def test_anything_else_is_not_a_dynamics_date(text: str) -> None:
    with pytest.raises(ValueError, match=r"\.$"):
        parse_dynamics_date(text)


def test_a_date_still_carrying_its_backslash_escapes_is_read_in_a_body() -> None:
    body = document(ACCOUNT_UPDATE)
    set_attribute(body, "modifiedon", "\\/Date(1527757524000)\\/")  # literal backslashes in the text
    assert b'"\\\\/Date(1527757524000)\\\\/"' in encode(body)
    assert target_of(parse_context(encode(body))).get("modifiedon") == datetime(2018, 5, 31, 9, 5, 24, tzinfo=UTC)


def test_text_that_merely_starts_like_a_date_stays_text() -> None:
    body = document(ACCOUNT_UPDATE)
    set_attribute(body, "description", "/Date( is how WCF writes dates")
    assert target_of(parse_context(encode(body))).get("description") == "/Date( is how WCF writes dates"


def test_guids_are_lower_case() -> None:
    body = document(ACCOUNT_UPDATE)
    body["PrimaryEntityId"] = "EC4E2F7D-9D60-E811-A95A-000D3AF24950"
    set_attribute(
        body,
        "parentaccountid",
        {"__type": REFERENCE_TYPE, "Id": "B76B3F4B-1BE7-E611-8101-E0071B6AF231", "LogicalName": "account"},
    )
    set_attribute(body, "new_externalid", "A0BDE583-0537-EB11-BF68-0022489B563D")
    context = parse_context(encode(body))
    assert context.primary_entity_id == "ec4e2f7d-9d60-e811-a95a-000d3af24950"
    assert target_of(context).get("parentaccountid").id == "b76b3f4b-1be7-e611-8101-e0071b6af231"
    assert target_of(context).get("new_externalid") == "a0bde583-0537-eb11-bf68-0022489b563d"


def test_the_empty_guid_of_a_context_means_no_row() -> None:
    body = document(ALLTYPES)
    body["PrimaryEntityId"] = "00000000-0000-0000-0000-000000000000"
    assert parse_context(encode(body)).primary_entity_id is None


def test_a_delete_has_an_entity_reference_as_its_target() -> None:
    context = parse_context(account_delete())
    assert context.message_name == "Delete"
    assert context.target == EntityReference("account", "ec4e2f7d-9d60-e811-a95a-000d3af24950")
    assert context.parent is None


def test_properties_dataverse_may_add_later_are_ignored() -> None:
    body = document(ACCOUNT_UPDATE)
    body["NewContextProperty"] = {"anything": [1, 2]}
    body["InputParameters"][0]["value"]["NewEntityProperty"] = True
    body["InputParameters"][0]["NewPairProperty"] = "x"
    set_attribute(
        body, "ownerid", {"__type": REFERENCE_TYPE, "Id": body["UserId"], "LogicalName": "systemuser", "Extra": 1}
    )
    set_attribute(body, "new_amount", {"__type": MONEY_TYPE, "Value": 12.5, "Currency": "EUR"})
    target = target_of(parse_context(encode(body)))
    assert target.get("ownerid").logical_name == "systemuser"
    assert target.get("new_amount") == Decimal("12.5")


def test_converted_values_cannot_be_changed() -> None:
    target = target_of(parsed(ACCOUNT_CREATE))
    with pytest.raises(TypeError):
        target.attributes["creditonhold"] = True  # type: ignore[index]


def test_a_utf8_body_with_non_ascii_text_round_trips_exactly() -> None:
    name = "Rīga Šķirotava Ōsaka"
    raw = account_create_named(name)
    assert name.encode("utf-8") in raw
    context = parse_context(raw)
    assert target_of(context).get("name") == name
    assert context.parent is not None and target_of(context.parent).get("name") == name


def test_a_byte_order_mark_is_tolerated() -> None:
    context = parse_context(b"\xef\xbb\xbf" + account_create_named("Ōsaka"))
    assert target_of(context).get("name") == "Ōsaka"


def test_a_body_stripped_for_size_is_accepted_when_the_header_says_so() -> None:
    body = document(ACCOUNT_UPDATE)
    for removed in ("InputParameters", "PreEntityImages", "PostEntityImages", "ParentContext"):
        del body[removed]
    context = parse_context(encode(body), size_exceeded=True)
    assert context.size_exceeded is True
    assert context.target is None and context.input_parameters == {}
    assert context.primary_entity_id == "ec4e2f7d-9d60-e811-a95a-000d3af24950"
    assert refusal(encode(body)).endswith("InputParameters is missing.")


def test_a_chain_of_parent_contexts_as_deep_as_allowed_parses() -> None:
    context: ExecutionContext | None = parse_context(with_parents(CUSTOMACTIVITY, 50))
    depth = 0
    while context is not None:
        depth, context = depth + 1, context.parent
    assert depth == 52


# --- refusals -------------------------------------------------------------------------------------


def _without(name: str, *keys: str) -> bytes:
    body = document(name)
    for key in keys:
        del body[key]
    return encode(body)


def _changed(name: str, **values: Any) -> bytes:
    return encode(dict(document(name), **values))


def _with_target_attribute(name: str, key: str, value: Any) -> bytes:
    return encode(set_attribute(document(name), key, value))


def _attribute_without_key() -> bytes:
    body = document(ALLTYPES)
    target_attributes(body)[3] = {"value": 1}
    return encode(body)


def _deep_value(levels: int) -> bytes:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return _with_target_attribute(ACCOUNT_UPDATE, "new_nested", value)


@pytest.mark.parametrize(
    ("raw", "sentence"),
    [
        pytest.param(
            b"Hello, world", "The body is not valid JSON: expecting value at line 1, column 1.", id="not JSON"
        ),
        pytest.param(recorded(ACCOUNT_CREATE)[:9000], "The body is not valid JSON: ", id="truncated JSON"),
        pytest.param(b"", "The body is empty.", id="empty"),
        pytest.param(b'{"Depth": NaN}', "The body is not valid JSON: NaN is not a JSON number.", id="NaN"),
        pytest.param(
            recorded(ACCOUNT_UPDATE).replace(b"1111", b"\xff\xfe11"),
            "The body is not UTF-8 text: the byte at offset ",
            id="invalid UTF-8",
        ),
        pytest.param(
            account_create_named("Ōsaka").replace("Ō".encode(), "Ō".encode("cp1257")),
            "The body is not UTF-8 text: ",
            id="another encoding",
        ),
        pytest.param(
            b"\xed\xa0\x80", "The body is not UTF-8 text: the byte at offset 0 cannot be decoded.", id="surrogate"
        ),
        pytest.param(b"[]", "The body is a JSON array, not a Dynamics 365 execution context.", id="array"),
        pytest.param(b'"Create"', "The body is a JSON string, not a Dynamics 365 execution context.", id="string"),
        pytest.param(b"null", "The body is a JSON null, not a Dynamics 365 execution context.", id="null"),
        pytest.param(
            b"{}",
            "The body is not a Dynamics 365 execution context: MessageName is missing (and 5 more problems).",
            id="{}",
        ),
        pytest.param(
            _without(ALLTYPES, "InputParameters"),
            "The body is not a Dynamics 365 execution context: InputParameters is missing.",
            id="no InputParameters",
        ),
        pytest.param(
            _without(ALLTYPES, "MessageName"),
            "The body is not a Dynamics 365 execution context: MessageName is missing.",
            id="no MessageName",
        ),
        pytest.param(
            _without(ALLTYPES, "PrimaryEntityName"),
            "The body is not a Dynamics 365 execution context: PrimaryEntityName is missing.",
            id="no PrimaryEntityName",
        ),
        pytest.param(
            _changed(ALLTYPES, InputParameters={"key": "Target"}),
            "The body is not a Dynamics 365 execution context: InputParameters is not a list.",
            id="InputParameters not a list",
        ),
        pytest.param(
            _changed(ALLTYPES, InputParameters=None),
            "The body is not a Dynamics 365 execution context: InputParameters is null.",
            id="InputParameters null",
        ),
        pytest.param(
            _changed(ALLTYPES, MessageName=""),
            "The body is not a Dynamics 365 execution context: MessageName is empty.",
            id="empty MessageName",
        ),
        pytest.param(
            _attribute_without_key(),
            "The body is not a Dynamics 365 execution context: InputParameters[Target].Attributes[3].key is missing.",
            id="attribute without key",
        ),
        pytest.param(
            _with_target_attribute(ALLTYPES, "albxrm_currency", {"__type": MONEY_TYPE, "Value": "2154.32"}),
            "The body is not a Dynamics 365 execution context: "
            "InputParameters[Target].Attributes[albxrm_currency].Value is not a number.",
            id="Money not a number",
        ),
        pytest.param(
            _with_target_attribute(ALLTYPES, "albxrm_currency", {"__type": MONEY_TYPE}),
            "The body is not a Dynamics 365 execution context: "
            "InputParameters[Target].Attributes[albxrm_currency].Value is missing.",
            id="Money without a value",
        ),
        pytest.param(
            _with_target_attribute(ALLTYPES, "modifiedon", "/Date(yesterday)/"),
            "The body is not a Dynamics 365 execution context: "
            "InputParameters[Target].Attributes[modifiedon] is not a valid /Date(milliseconds)/ date.",
            id="bad attribute date",
        ),
        pytest.param(
            _changed(ALLTYPES, OperationCreatedOn="\\/Date(1608007658000+00)\\/"),
            "The body is not a Dynamics 365 execution context: "
            "OperationCreatedOn is not a valid /Date(milliseconds)/ date.",
            id="bad OperationCreatedOn",
        ),
        pytest.param(
            _with_target_attribute(
                ALLTYPES,
                "albxrm_multiselectoptionset",
                [{"__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts", "Value": True}],
            ),
            "The body is not a Dynamics 365 execution context: "
            "InputParameters[Target].Attributes[albxrm_multiselectoptionset][0].Value is not a whole number.",
            id="option not a number",
        ),
        pytest.param(
            _with_target_attribute(
                ALLTYPES, "ownerid", {"__type": REFERENCE_TYPE, "Id": "a0bde583-0537-eb11-bf68-0022489b563d"}
            ),
            "The body is not a Dynamics 365 execution context: "
            "InputParameters[Target].Attributes[ownerid].LogicalName is missing.",
            id="reference without table",
        ),
        pytest.param(
            _changed(ALLTYPES, PrimaryEntityId="44bfc2a7"),
            "The body is not a Dynamics 365 execution context: PrimaryEntityId is not a GUID.",
            id="bad GUID",
        ),
        pytest.param(
            _changed(ALLTYPES, Depth=True),
            "The body is not a Dynamics 365 execution context: Depth is not a whole number.",
            id="Depth a boolean",
        ),
        pytest.param(
            _changed(ALLTYPES, Stage="40"),
            "The body is not a Dynamics 365 execution context: Stage is not a whole number.",
            id="Stage a string",
        ),
        pytest.param(
            _changed(ALLTYPES, PostEntityImages=[{"key": "PostImage", "value": "row"}]),
            "The body is not a Dynamics 365 execution context: PostEntityImages[PostImage] is not an object.",
            id="image not an entity",
        ),
        pytest.param(
            _changed(ALLTYPES, ParentContext={"MessageName": "Create"}),
            "The body is not a Dynamics 365 execution context: ParentContext.PrimaryEntityName is missing "
            "(and 4 more problems).",
            id="parent not a context",
        ),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "The body is nested too deeply to be read", id="deep JSON"),
        pytest.param(_deep_value(80), "The body is nested more than 64 levels deep", id="deep value"),
        pytest.param(
            with_parents(ACCOUNT_UPDATE, 80), "The body is nested more than 64 levels deep", id="deep parents"
        ),
    ],
)
def test_a_body_that_is_not_a_context_is_refused_with_a_sentence(raw: bytes, sentence: str) -> None:
    message = refusal(raw)
    assert message.startswith(sentence)
    assert message.endswith(".") and "{" not in message and "[]" not in message


def test_not_a_context_is_a_value_error() -> None:
    assert issubclass(NotAContext, ValueError)


def test_a_recursion_error_while_reading_becomes_not_a_context() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(_stack()) + 100)  # enough to read the JSON, too little for the schemas
    try:
        with pytest.raises(NotAContext, match="nested too deeply to be read"):
            parse_context(with_parents(CUSTOMACTIVITY, 45))
    finally:
        sys.setrecursionlimit(limit)


def _stack() -> list[Any]:
    frames: list[Any] = []
    frame = sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back  # type: ignore[assignment]
    return frames


def test_every_refusal_sentence_names_the_place_not_the_raw_value() -> None:
    secret = "sk_live_should_not_echo"
    message = refusal(_changed(ALLTYPES, OperationCreatedOn=f"/Date({secret})/"))
    assert secret not in message
