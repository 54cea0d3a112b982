"""Ctrl-C helpers: held during a short write, never swallowed by a helper thread."""

from __future__ import annotations

import os
import signal
import threading

from credwarden.interrupts import held, quiet_thread, wait_event


def test_held_notes_a_ctrl_c_and_restores_the_handler() -> None:
    runner = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with held() as arrived:
            os.kill(os.getpid(), signal.SIGINT)
        assert arrived == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, runner)


def test_held_outside_the_main_thread_holds_nothing() -> None:
    seen: list[list[int]] = []

    def body() -> None:
        with held() as arrived:
            seen.append(arrived)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [[]]


def test_a_quiet_thread_blocks_sigint() -> None:
    masks: list[set[signal.Signals]] = []
    t = quiet_thread(lambda: masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    t.start()
    t.join()
    assert signal.SIGINT in masks[0]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_wait_event_returns_when_set_or_at_the_timeout() -> None:
    done = threading.Event()
    assert wait_event(done, 0.01) is False
    threading.Timer(0.05, done.set).start()
    assert wait_event(done, 30) is True
