"""The IMAP edge: mail waiting in a mailbox → store raw (commit) → \\Seen or moved.

IMAP is the other way in beside SMTP. For each configured `[[imap]]` mailbox a
poller fetches new messages with `BODY.PEEK[]` (which leaves them unseen),
commits each one's raw bytes with `accept`, and only then marks it handled,
by flagging it \\Seen or moving it to another folder. A crash or a database
outage between the two leaves the message unseen on the server, and it is
fetched again; `accept` recognises the second copy by its Message-ID, so
nothing is stored twice. Every decision about the message is the worker's,
woken after new rows are committed.

The poller waits with IDLE when the server offers it, and otherwise polls.
When the server goes away it reconnects with capped exponential backoff. How
far it got in each folder (UIDVALIDITY and the last UID handled) is kept in the
`imap_state` table so a restart continues where it stopped.

Several daemons on one PostgreSQL database may all list the same mailbox:
one at a time polls it, the one holding its advisory lock
(`intake.store.locks`); the others stand by and take over when it dies.

imapclient is synchronous: `ImapPoller` is the blocking core, and
`run_imap_poller` runs it in a thread of its own for the asyncio daemon.
"""
from __future__ import annotations

import asyncio
import imaplib
import logging
import re
import selectors
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import CapabilityError, LoginError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from intake.config import ImapMailbox
from intake.credentials import SecretUnavailable, read_secret, read_secret_file
from intake.logs import logfmt
from intake.mailin.accept import Stored, accept
from intake.store.database import Store
from intake.store.locks import HeldLock
from intake.store.models import ImapState

log = logging.getLogger("intake.mailin.imap")

FETCH_BATCH = 20  # messages fetched per round trip; bounds memory with large attachments
CONNECT_TIMEOUT_SECONDS = 30.0
READ_TIMEOUT_SECONDS = 120.0
# RFC 2177: a client should end IDLE and start it again at least every 29 minutes.
MAX_IDLE_SECONDS = 25 * 60
TOKEN_COMMAND_TIMEOUT_SECONDS = 60.0
STANDBY_SECONDS = 5.0  # how often a daemon that does not poll a mailbox (another does) tries to take it over
SEEN = b"\\Seen"
DELETED = b"\\Deleted"


class ImapUnavailable(Exception):
    """The mailbox cannot be used now (connection, login, credentials); try again later."""


class CredentialsUnavailable(ImapUnavailable):
    """The password or token could not be read (unset variable, missing file, failing command)."""


class StoreUnavailable(Exception):
    """A message could not be committed; it was left unseen on the server."""


# --- secrets -------------------------------------------------------------------


def read_password(mailbox: ImapMailbox) -> str:
    """The password from its environment variable or file, read afresh at every login."""
    try:
        return read_secret(mailbox.password_env, mailbox.password_file, env_setting="password_env",
                           file_setting="password_file")
    except SecretUnavailable as exc:
        raise CredentialsUnavailable(str(exc)) from exc


def read_oauth2_token(mailbox: ImapMailbox) -> str:
    """The OAuth2 access token from its file or command, read afresh at every login.

    Access tokens live about an hour; whatever refreshes them (a cron job
    writing the file, or the command itself) is outside intake.
    """
    if mailbox.oauth2_token_file:
        return _read_secret_file(mailbox.oauth2_token_file, "oauth2_token_file")
    if not mailbox.oauth2_token_command:
        raise CredentialsUnavailable("no oauth2_token_file or oauth2_token_command is configured")
    try:
        ran = subprocess.run(mailbox.oauth2_token_command, shell=True, capture_output=True, text=True,
                             timeout=TOKEN_COMMAND_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise CredentialsUnavailable(f"oauth2_token_command did not finish in {exc.timeout:.0f}s") from exc
    if ran.returncode != 0:
        raise CredentialsUnavailable(f"oauth2_token_command exited with status {ran.returncode}: "
                              f"{ran.stderr.strip()[-500:] or '(no message)'}")
    token = ran.stdout.strip()
    if not token:
        raise CredentialsUnavailable("oauth2_token_command printed no token")
    return token


def uses_oauth2(mailbox: ImapMailbox) -> bool:
    return bool(mailbox.oauth2_token_file or mailbox.oauth2_token_command)


def _read_secret_file(path: Path, setting: str) -> str:
    try:
        return read_secret_file(path, setting)
    except SecretUnavailable as exc:
        raise CredentialsUnavailable(str(exc)) from exc


# --- backoff -------------------------------------------------------------------


@dataclass
class Backoff:
    """Delays that double after each failure up to a cap, and start over after a success."""

    initial: float = 1.0
    maximum: float = 60.0
    _next: float | None = None

    def next(self) -> float:
        delay = self.initial if self._next is None else self._next
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = None


# --- the poller ----------------------------------------------------------------


def open_logged_in(mailbox: ImapMailbox, ssl_context: ssl.SSLContext | None = None) -> IMAPClient:
    """Connect as the mailbox is configured (TLS, STARTTLS or none) and log in (password or XOAUTH2)."""
    context = ssl_context or ssl.create_default_context()
    timeout = SocketTimeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
    if mailbox.security == "tls":
        client = IMAPClient(mailbox.host, mailbox.port, ssl=True, ssl_context=context, timeout=timeout)
    else:
        client = IMAPClient(mailbox.host, mailbox.port, ssl=False, timeout=timeout)
    try:
        if mailbox.security == "starttls":
            client.starttls(context)
        if uses_oauth2(mailbox):
            client.oauth2_login(mailbox.username, read_oauth2_token(mailbox))
        else:
            client.login(mailbox.username, read_password(mailbox))
    except BaseException:
        _shutdown(client)
        raise
    return client


class ImapPoller:
    """Fetches one folder of one mailbox into the store; blocking, for one thread.

    `poll_once` and `wait_for_mail` are the steps, usable on their own (they
    connect when needed); `run` repeats them until `stop` is called, from any
    thread, reconnecting with backoff whenever the server or the store fails.
    """

    def __init__(self, mailbox: ImapMailbox, store: Store, *, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0, idle_check_seconds: float = 1.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.mailbox = mailbox
        self.store = store
        self.backoff = Backoff(backoff_initial, backoff_max)
        self.idle_check_seconds = idle_check_seconds
        self.ssl_context = ssl_context
        self.client: IMAPClient | None = None
        self._stopping = threading.Event()
        self._uid_validity = 0
        self._last_uid = 0
        self._rescan = True  # look at every unhandled message, not only UIDs above _last_uid
        self._unannounced = 0  # stored since the worker was last woken
        self.lock = HeldLock(store.engine, f"imap {mailbox.name}/{mailbox.folder}")

    @property
    def where(self) -> dict[str, str]:
        """The fields that say which poller a log line is about."""
        return {"mailbox": self.mailbox.name, "folder": self.mailbox.folder}

    @property
    def source(self) -> str:
        return f"imap:{self.mailbox.name}/{self.mailbox.folder}"

    # --- the loop ------------------------------------------------------------

    def run(self, wake_worker: Callable[[], None]) -> None:
        """Poll and wait until `stop()`; failures are logged and retried, never raised.

        On PostgreSQL one daemon at a time polls a mailbox: the one holding its
        lock. The others wait as standbys and try again every
        `STANDBY_SECONDS`, so one of them takes over when the holder dies.
        """
        standing_by = False
        try:
            while not self._stopping.is_set():
                if not self._hold_lock():
                    if not standing_by:
                        log.info(logfmt(event="imap_standby", **self.where,
                                        detail="another intake serve polls this mailbox; taking over if it stops"))
                    standing_by = True
                    self.close()
                    self._stopping.wait(STANDBY_SECONDS)
                    continue
                if standing_by:
                    log.info(logfmt(event="imap_taken_over", **self.where))
                    standing_by = False
                self._cycle(wake_worker)
        finally:
            self.close()
            self.lock.release()

    def _hold_lock(self) -> bool:
        try:
            return self.lock.take()
        except SQLAlchemyError as exc:  # the database is away: nothing could be stored anyway
            log.error(logfmt(event="store_unavailable", **self.where, error=_first_line(exc),
                             retry_in=f"{STANDBY_SECONDS:g}s"))
            return False

    def stop(self) -> None:
        """Ask `run` (in another thread) to return; it does within `idle_check_seconds`."""
        self._stopping.set()

    def _cycle(self, wake_worker: Callable[[], None]) -> None:
        try:
            self.poll_once()
            self._announce(wake_worker)
            self.backoff.reset()
            self.wait_for_mail(min(self.mailbox.poll_seconds, MAX_IDLE_SECONDS))
            return
        except StoreUnavailable as exc:
            delay = self.backoff.next()
            log.error(logfmt(event="store_unavailable", **self.where, error=str(exc), retry_in=f"{delay:g}s",
                             detail="the message stays unseen on the server"))
        except (ImapUnavailable, imaplib.IMAP4.error, OSError) as exc:
            delay = self.backoff.next()
            # A refused login or an unreadable secret needs a person; a dropped connection usually not.
            level = logging.ERROR if isinstance(exc, (LoginError, CredentialsUnavailable)) else logging.WARNING
            log.log(level, logfmt(event="reconnecting", **self.where, error=_describe(exc, self.mailbox),
                                  retry_in=f"{delay:g}s"))
            self.close()
        except Exception:  # a bug: keep the daemon and the other mailboxes running
            delay = self.backoff.next()
            log.exception(logfmt(event="unexpected_error", **self.where, retry_in=f"{delay:g}s"))
            self.close()
        self._announce(wake_worker)
        self._stopping.wait(delay)

    def _announce(self, wake_worker: Callable[[], None]) -> None:
        if self._unannounced:
            self._unannounced = 0
            wake_worker()

    # --- connecting ----------------------------------------------------------

    def connect(self) -> IMAPClient:
        """Log in, select the folder and compare its UIDVALIDITY with what was stored."""
        client = open_logged_in(self.mailbox, self.ssl_context)
        try:
            if self.mailbox.after == "move" and not client.folder_exists(self.mailbox.move_to):
                log.info(logfmt(event="creating_folder", **self.where, move_to=self.mailbox.move_to))
                client.create_folder(self.mailbox.move_to)
            selected = client.select_folder(self.mailbox.folder)
            _announced_meanwhile(client)  # SELECT's own counts are no news: the first poll looks at everything
            self._resume(int(selected[b"UIDVALIDITY"]))
        except BaseException:
            _shutdown(client)
            raise
        log.info(logfmt(event="connected", **self.where, host=self.mailbox.host, port=self.mailbox.port,
                        username=self.mailbox.username,
                        wait="idle" if self._idles(client) else f"poll every {self.mailbox.poll_seconds:g}s"))
        self.client = client
        return client

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.logout()
            except Exception:  # the connection is usually already gone
                _shutdown(client)

    def _connected(self) -> IMAPClient:
        return self.client or self.connect()

    def _resume(self, uid_validity: int) -> None:
        state = self._load_state()
        if state is None:
            log.info(logfmt(event="first_visit", **self.where, detail="taking every unhandled message in the folder"))
        elif state.uid_validity != uid_validity:
            log.warning(logfmt(event="uidvalidity_changed", **self.where, before=state.uid_validity,
                               after=uid_validity, detail="looking at every unhandled message again (copies "
                                                          "already stored are recognised and not stored twice)"))
        self._uid_validity = uid_validity
        self._rescan = state is None or state.uid_validity != uid_validity
        self._last_uid = 0 if self._rescan or state is None else state.last_uid

    # --- fetching --------------------------------------------------------------

    def poll_once(self) -> int:
        """Store every new message and mark it handled; the number newly stored (not duplicates)."""
        client = self._connected()
        # A server shows a session mail delivered since its last command only from the next command on
        # (Dovecot answers a SEARCH from its view before it): a NOOP first, so the search sees all of it.
        client.noop()
        ceiling = self._highest_uid(client) if self._rescan else 0
        uids = self._unhandled_uids(client)
        new = 0
        for batch in _batches(uids, FETCH_BATCH):
            fetched = client.fetch(batch, [b"BODY.PEEK[]", b"RFC822.SIZE"])
            for uid in batch:
                if self._stopping.is_set():
                    return new
                if uid in fetched:  # else expunged by someone else meanwhile
                    new += self._take(client, uid, fetched[uid][b"BODY[]"])
        if self._rescan:
            self._rescan = False
            self._remember(max([ceiling, self._last_uid, *uids]))
        return new

    def _highest_uid(self, client: IMAPClient) -> int:
        uids = client.search(["ALL"])
        return max(uids, default=0)

    def _unhandled_uids(self, client: IMAPClient) -> list[int]:
        if self._rescan:
            criteria = ["UNSEEN", "NOT", "DELETED"] if self.mailbox.after == "seen" else ["NOT", "DELETED"]
            return sorted(client.search(criteria))
        # "UID n:*" always matches the highest UID, even when it is below n.
        found = client.search(["UID", f"{self._last_uid + 1}:*", "NOT", "DELETED"])
        return sorted(uid for uid in found if uid > self._last_uid)

    def _take(self, client: IMAPClient, uid: int, raw: bytes) -> int:
        """Commit one message, then (and only then) mark it handled on the server."""
        stored = self._store(uid, raw)
        self._mark_handled(client, uid)
        if not self._rescan:
            self._remember(uid)
        if stored.duplicate:
            log.info(logfmt(event="duplicate", **self.where, uid=uid, inbound=stored.id))
            return 0
        log.info(logfmt(event="stored", **self.where, uid=uid, inbound=stored.id, size=len(raw)))
        self._unannounced += 1
        return 1

    def _store(self, uid: int, raw: bytes) -> Stored:
        try:
            return accept(self.store, raw, f"{self.source} uid={uid}")
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"uid {uid} could not be stored: {_first_line(exc)}") from exc

    def _mark_handled(self, client: IMAPClient, uid: int) -> None:
        if self.mailbox.after == "seen":
            client.add_flags([uid], [SEEN], silent=True)
            return
        target = self.mailbox.move_to
        if client.has_capability("MOVE"):
            client.move([uid], target)
            return
        # Without MOVE: copy, then delete the original. UIDPLUS lets us expunge
        # just this message; a plain EXPUNGE removes every \Deleted message in
        # the folder, which is what a mail client's "compact" would do anyway.
        client.copy([uid], target)
        client.add_flags([uid], [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        else:
            client.expunge()

    # --- waiting ---------------------------------------------------------------

    def wait_for_mail(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds (less once `stop()` is called); True when the server announced mail."""
        client = self._connected()
        if not self._idles(client):
            self._stopping.wait(timeout)
            return False
        if _announced_meanwhile(client):
            return True
        deadline = time.monotonic() + timeout
        client.idle()
        try:
            # Mail that arrived since the last command may be announced with the IDLE command's own
            # answer, before the server's "+ idling": that is set aside too, not read by idle_check.
            if _announced_meanwhile(client):
                return True
            while not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._idle_announced_mail(client, min(remaining, self.idle_check_seconds)):
                    return True
            return False
        finally:
            client.idle_done()

    def _idles(self, client: IMAPClient) -> bool:
        return self.mailbox.idle and client.has_capability("IDLE")

    def _idle_announced_mail(self, client: IMAPClient, seconds: float) -> bool:
        if buffered := _buffered_lines(client):
            if any(line.startswith(b"* BYE") for line in buffered):
                raise ImapUnavailable(f"the server said goodbye: {_text(buffered)}")
            return any(_ANNOUNCES_MAIL.match(line) for line in buffered)
        if not _readable(client, seconds):
            return False
        # idle_check swallows end-of-file and returns nothing: a readable
        # socket with no response on it is a closed connection.
        responses = client.idle_check(timeout=0)
        if not responses:
            raise ImapUnavailable("the server closed the connection")
        if any(r and r[0] == b"BYE" for r in responses):
            raise ImapUnavailable(f"the server said goodbye: {_text(responses)}")
        return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)

    # --- state -----------------------------------------------------------------

    def _load_state(self) -> ImapState | None:
        try:
            with self.store.session() as session:
                return session.get(ImapState, (self.mailbox.name, self.mailbox.folder))
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot read the IMAP state: {_first_line(exc)}") from exc

    def _remember(self, last_uid: int) -> None:
        try:
            self._save_state(last_uid)
        except IntegrityError:
            self._save_state(last_uid)  # another daemon created the row first; now it is an update
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot record uid {last_uid} as handled: {_first_line(exc)}") from exc
        self._last_uid = last_uid

    def _save_state(self, last_uid: int) -> None:
        key = (self.mailbox.name, self.mailbox.folder)
        with self.store.session() as session, session.begin():
            state = session.get(ImapState, key)
            if state is None:
                state = ImapState(mailbox=key[0], folder=key[1], uid_validity=self._uid_validity, last_uid=0)
                session.add(state)
            if state.uid_validity != self._uid_validity:
                state.uid_validity, state.last_uid = self._uid_validity, 0
            state.last_uid = max(state.last_uid, last_uid)


async def run_imap_poller(mailbox: ImapMailbox, store: Store, wake_worker: Callable[[], None],
                          stopping: asyncio.Event, **options: object) -> None:
    """Poll one mailbox until `stopping` is set; `wake_worker` is called on the event loop.

    The blocking poller gets a thread of its own rather than one of the
    loop's default executor, which it would otherwise hold for good.
    `options` go to `ImapPoller` (backoff, ssl_context …).
    """
    loop = asyncio.get_running_loop()
    poller = ImapPoller(mailbox, store, **options)  # type: ignore[arg-type]
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"intake-imap-{mailbox.name}")
    watcher = asyncio.create_task(_stop_when_set(stopping, poller))

    def wake_on_loop() -> None:
        loop.call_soon_threadsafe(wake_worker)

    try:
        await loop.run_in_executor(executor, poller.run, wake_on_loop)
    finally:
        poller.stop()  # also when this task is cancelled
        watcher.cancel()
        executor.shutdown(wait=False)


async def _stop_when_set(stopping: asyncio.Event, poller: ImapPoller) -> None:
    await stopping.wait()
    poller.stop()


# --- small helpers ---------------------------------------------------------------


def _batches(uids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(uids), size):
        yield list(uids[start:start + size])


_ANNOUNCES_MAIL = re.compile(rb"\* \d+ (EXISTS|RECENT)\b", re.IGNORECASE)


def _buffered_lines(client: IMAPClient) -> list[bytes]:
    """Lines imaplib has already read from the socket but nobody has parsed yet.

    The server's "+ idling" often comes in one packet with the EXISTS of mail
    that arrived just before IDLE; imaplib's buffered reader takes both, and
    the socket then looks idle to select() (and to imapclient's idle_check),
    so that mail would wait for the next poll. (Private attributes: imapclient
    offers no way to see its buffer.)
    """
    sock = client.socket()
    timeout = sock.gettimeout()
    lines = []
    try:
        while True:
            sock.setblocking(False)
            try:
                if not client._imap.file.peek(1):
                    break
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            sock.settimeout(timeout)  # the rest of a line already begun is on its way
            lines.append(client._imap._get_line())
    finally:
        sock.settimeout(timeout)
    return lines


def _readable(client: IMAPClient, seconds: float) -> bool:
    sock = client.socket()
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True  # already decrypted, waiting in the TLS layer where select cannot see it
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(seconds))


def _announced_meanwhile(client: IMAPClient) -> bool:
    """New mail the server announced during an earlier command, which IDLE will not announce again.

    imaplib keeps such untagged responses aside; imapclient has no public way
    to read them, hence the private attribute.
    """
    stash = client._imap.untagged_responses
    return bool(stash.pop("EXISTS", None)) | bool(stash.pop("RECENT", None))


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # nothing more can be done with a broken connection
        pass


def _describe(exc: BaseException, mailbox: ImapMailbox) -> str:
    if isinstance(exc, LoginError):
        how = "OAuth2 (XOAUTH2)" if uses_oauth2(mailbox) else "password"
        return f"login as {mailbox.username} with {how} refused by {mailbox.host}: {_text(exc.args)}"
    if isinstance(exc, CapabilityError):
        return f"{mailbox.host}:{mailbox.port} lacks a capability we need: {_text(exc.args)}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {mailbox.host}:{mailbox.port} refused"
    if isinstance(exc, (OSError, imaplib.IMAP4.abort)):
        return f"connection to {mailbox.host}:{mailbox.port} lost: {_text([exc]) or type(exc).__name__}"
    return _text(exc.args) or type(exc).__name__


def _text(values: object) -> str:
    items = values if isinstance(values, (list, tuple)) else [values]
    return " ".join(_unbytes(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
                    for v in items).strip()


def _unbytes(text: str) -> str:
    """imapclient words some errors as str(b'...'); show the server's words without the b'' around them."""
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        return text[2:-1]
    return text


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
