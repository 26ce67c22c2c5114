"""What the local scripts share: where Holdfast runs, its local secrets, and waiting for an event.

Standard library only, so that any Python 3.11 runs the scripts. Values come from the
environment first, then from ``.env`` (written by ``./scripts/run``). The service is at
``http://127.0.0.1:$PORT`` (5000 by default), or ``--url``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = "5000"
FINISHED = ("processed", "ignored", "failed")


class ScriptError(Exception):
    """Something the person running the script can fix; said in a sentence, without a traceback."""


def dotenv(path: Path = ROOT / ".env") -> dict[str, str]:
    """The ``NAME=value`` lines of ``.env`` (none when it does not exist yet)."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def setting(name: str, why: str) -> str:
    """A value from the environment or .env; a sentence saying how to get it when it has none."""
    value = os.environ.get(name) or dotenv().get(name)
    if not value:
        raise ScriptError(f"{name} is not set ({why}): run ./scripts/run once, which writes it into .env, or set it.")
    return value


def service_url(given: str | None) -> str:
    """``--url``, or the address ./scripts/run serves on (HOST and PORT as it reads them)."""
    if given:
        return given.rstrip("/")
    host = os.environ.get("HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):  # noqa: S104 - the address it listens on, not one to bind
        host = "127.0.0.1"
    return f"http://{host}:{os.environ.get('PORT') or DEFAULT_PORT}"


def call(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """An HTTP call to the local service: its status and text, whatever the status."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ScriptError(f"{url} is not an http:// or https:// address.")
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 - checked
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - checked above
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as error:
        base = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(url))
        reason = getattr(error, "reason", error)
        raise ScriptError(
            f"Nothing answers at {base} ({reason}): start Holdfast with ./scripts/run "
            "(or give the port it runs on: PORT=5001, or --url)."
        ) from None


def stripe_signature(body: str, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header Stripe sends: HMAC-SHA256 of "{t}.{body}" with the endpoint's secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post_stripe_event(base: str, event: dict[str, Any]) -> tuple[int, str]:
    """POST an event to /webhooks/stripe as Stripe does, signed now with STRIPE_WEBHOOK_SECRET."""
    secret = setting("STRIPE_WEBHOOK_SECRET", "to sign the event").split(",")[0].strip()
    body = json.dumps(event)
    headers = {"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body, secret, int(time.time()))}
    return call("POST", f"{base}/webhooks/stripe", body.encode(), headers)


def post_dynamics_body(base: str, body: bytes) -> tuple[int, str]:
    """POST a body to /webhooks/dynamics as Dataverse does, with DYNAMICS_WEBHOOK_KEY as ?code=."""
    key = setting("DYNAMICS_WEBHOOK_KEY", "the webhook's key, sent as ?code=")
    query = urllib.parse.urlencode({"code": key})
    return call("POST", f"{base}/webhooks/dynamics?{query}", body, {"Content-Type": "application/json"})


def find_event(base: str, token: str, matches: Callable[[dict[str, Any]], bool], start: str | None) -> tuple[Any, Any]:
    """The stored delivery that ``matches`` (or None), and a cursor to start from next time."""
    cursor, resume = start, start
    while True:
        query = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        status, text = call(
            "GET", f"{base}/api/events?{urllib.parse.urlencode(query)}", headers={"Authorization": f"Bearer {token}"}
        )
        if status == 401:
            raise ScriptError("The service refused ADMIN_API_TOKEN: is it the one in .env (and did it restart since)?")
        if status != 200:
            raise ScriptError(f"GET /api/events answered {status}: {text.strip()[:300]}")
        page = json.loads(text)
        for item in page["items"]:
            if matches(item):
                return item, resume
        if not page.get("next_cursor"):
            return None, resume
        resume = cursor = page["next_cursor"]


def wait_until_done(base: str, matches: Callable[[dict[str, Any]], bool], what: str, timeout: float) -> dict[str, Any]:
    """Poll GET /api/events until the delivery is no longer ``received``; ScriptError after ``timeout`` seconds."""
    token = setting("ADMIN_API_TOKEN", "to read GET /api/events")
    deadline = time.monotonic() + timeout
    cursor = None
    while True:
        event, cursor = find_event(base, token, matches, cursor)
        if event is not None and event["status"] in FINISHED:
            return dict(event)
        if time.monotonic() >= deadline:
            state = "not stored" if event is None else f"still {event['status']}"
            raise ScriptError(
                f"{what} is {state} after {timeout:g} s: is the worker running? (./scripts/run starts it; "
                "its log says why.)"
            )
        time.sleep(0.3)


def describe(event: dict[str, Any]) -> str:
    """One line: what became of a delivery."""
    line = f"{event['source']} event {event['event_id']} ({event['event_type']}): {event['status']}"
    if event.get("account_id"):
        line += f", account {event['account_id']}"
    if event["status"] == "failed" and event.get("last_error"):
        line += f": {event['last_error']}"
    return line


def finish(event: dict[str, Any]) -> int:
    """Print what became of the delivery; the exit status is 1 when it failed."""
    print(describe(event))
    return 1 if event["status"] == "failed" else 0


def run(main: Callable[[], int]) -> None:
    """Run a script's ``main``: a ScriptError is one sentence on stderr and exit status 1, not a traceback."""
    try:
        sys.exit(main())
    except ScriptError as error:
        print(f"{Path(sys.argv[0]).name}: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
