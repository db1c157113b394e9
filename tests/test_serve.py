"""`intake serve` as a process: start-up, graceful shutdown, and `serve --check`."""
from __future__ import annotations

import signal
from collections.abc import Callable

from conftest import SUPPORT
from intake.store.database import open_store, store_raw
from parsers.headers import filing_headers
from smtp_helpers import SERVE_MODULE, ZACK_ADDRESS, RunningIntake, case_message, free_port, make_intake, wait_until

__all__ = ["make_intake"]

Make = Callable[..., RunningIntake]


def test_sigterm_exits_0_after_processing_the_message_accepted_just_before(make_intake: Make) -> None:
    intake = make_intake().start()
    client = intake.smtp()
    client.sendmail(ZACK_ADDRESS, [SUPPORT], case_message(message_id="<last-one@bayside.example>"))
    intake.signal(signal.SIGTERM)  # right after the 250, while the session is still open
    assert intake.stop() == 0
    assert client.getreply()[0] == 421  # the idle session was told, not just dropped
    client.close()
    stored = intake.stored()
    assert [(m.message_id, m.outcome) for m in stored.inbound] == [("last-one@bayside.example", "case_created")]
    assert [o.status for o in stored.outbox] == ["sent"]  # delivered before exiting, too
    assert "event=stopping signal=SIGTERM" in intake.log_text()


def test_sigint_stops_the_listener_and_exits_0(make_intake: Make) -> None:
    intake = make_intake().start()
    intake.signal(signal.SIGINT)
    assert intake.stop() == 0
    assert "event=stopped failed=False" in intake.log_text()


def test_on_start_it_processes_what_an_earlier_run_stored_but_did_not_process(make_intake: Make) -> None:
    intake = make_intake()
    store = open_store(intake.database_url)
    raw = case_message(message_id="<left-over@bayside.example>")
    headers = filing_headers(raw)
    store_raw(store, raw, message_id=headers.message_id, sender=headers.sender, subject=headers.subject,
              source="smtp:127.0.0.1 (an earlier run)")
    store.engine.dispose()
    intake.start()
    stored = intake.wait_until_processed(1)
    assert stored.inbound[0].outcome == "case_created" and len(stored.cases) == 1


def test_check_passes_on_a_good_configuration_and_names_each_check(make_intake: Make) -> None:
    intake = make_intake()
    ran = intake.check()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["ok"] * 4
    assert any(line.startswith("ok    database ") and "SELECT" in line for line in lines)
    assert any(line.startswith(f"ok    smtp listener 127.0.0.1:{intake.port}") for line in lines)
    assert lines[-1] == "all 4 checks passed"


def test_check_fails_naming_an_unreachable_imap_server(make_intake: Make) -> None:
    port = free_port()  # nothing listens there
    imap = ("[[imap]]\nname = \"district\"\nhost = \"127.0.0.1\"\n"
            f"port = {port}\nsecurity = \"none\"\nusername = \"support\"\npassword_env = \"INTAKE_TEST_IMAP\"\n")
    intake = make_intake(imap=imap)
    ran = intake.check()
    assert ran.returncode == 1, ran.stdout + ran.stderr
    failed = [line for line in ran.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == [failed[0]] and f"imap district support@127.0.0.1:{port}" in failed[0]
    assert "refused" in failed[0].lower()
    assert ran.stdout.splitlines()[-1] == f"1 of 5 checks failed: imap district support@127.0.0.1:{port}"


def test_check_warns_when_serve_would_receive_nothing(make_intake: Make) -> None:
    ran = make_intake(smtp=False).check()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "warn  serve would receive nothing" in ran.stdout


def test_check_fails_when_the_smtp_port_is_taken(make_intake: Make) -> None:
    intake = make_intake().start()
    ran = intake.check()
    assert ran.returncode == 1
    assert f"FAIL  smtp listener 127.0.0.1:{intake.port}: cannot bind" in ran.stdout


def test_a_second_daemon_on_a_taken_port_exits_1_with_a_clear_error(make_intake: Make) -> None:
    first = make_intake().start()
    second = make_intake(port=first.port)
    ran = second.command("serve", module=SERVE_MODULE)
    assert ran.returncode == 1
    assert f"cannot listen on 127.0.0.1:{first.port}" in ran.stderr
    assert first.process is not None and first.process.poll() is None


class StalledRelay:
    """A relay that accepts connections and never says a word: what a hung smarthost looks like."""

    def __init__(self) -> None:
        import socket
        import threading
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


def test_a_relay_that_hangs_does_not_stall_intake(make_intake: Make) -> None:
    relay = StalledRelay()
    intake = make_intake()
    # The relay's timeout is far longer than the wait below: only processing apart from delivery passes.
    settings = f'relay_host = "127.0.0.1"\nrelay_port = {relay.port}\nrelay_security = "none"\n' \
               "relay_timeout_seconds = 120\n"
    intake.config.write_text(intake.config.read_text().replace("[smtp]", settings + "[smtp]", 1))
    try:
        intake.start()
        for n in range(3):
            intake.send(case_message(f"Households {n}", message_id=f"<stalled-{n}@bayside.example>"))
        stored = intake.wait_until_processed(3, timeout=30)
        assert [m.outcome for m in stored.inbound] == ["case_created"] * 3
        assert len(stored.outbox) == 3 and {o.status for o in stored.outbox} == {"queued"}
        wait_until(lambda: relay.accepted, timeout=10, what="delivery to try the relay meanwhile")
    finally:
        intake.close()
        relay.close()
