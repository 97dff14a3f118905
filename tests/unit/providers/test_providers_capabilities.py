"""Optional provider capabilities: declared in providers/base.py, passed through by wrappers."""

from __future__ import annotations

from voxdialog.agents.voicing import VoicedTTS
from voxdialog.audio.formats import AudioChunk
from voxdialog.providers.base import (
    BusyReporting,
    ProviderError,
    Transcript,
    close_provider,
    stt_busy,
    tts_for_reply,
    warm_up,
)
from voxdialog.providers.chain import CallPolicy, FallbackSTT, FallbackTTS
from voxdialog.providers.routing import LanguageRoutedSTT
from voxdialog.testing.fakes import FakeSTT, FakeTTS

POLICY = CallPolicy(breaker_failures=1, breaker_reset_s=60.0, min_retry_interval_s=0.0)


class BusySTT(FakeSTT):
    """A FakeSTT that says whether it is busy, and counts its warm-ups."""

    def __init__(self, *, busy: bool = False, warmup_fails: bool = False) -> None:
        super().__init__()
        self.is_busy = busy
        self.warmups = 0
        self._warmup_fails = warmup_fails

    @property
    def busy(self) -> bool:
        return self.is_busy

    async def warmup(self) -> None:
        self.warmups += 1
        if self._warmup_fails:
            raise ProviderError("no model", retryable=False)


def test_only_an_stt_that_reports_busy_can_be_busy() -> None:
    assert isinstance(BusySTT(), BusyReporting)
    assert not isinstance(FakeSTT(), BusyReporting)
    assert not stt_busy(FakeSTT())
    assert stt_busy(BusySTT(busy=True))


async def test_a_chain_is_busy_when_the_provider_a_call_would_reach_is() -> None:
    assert stt_busy(FallbackSTT([BusySTT(busy=True), BusySTT()], policy=POLICY))
    assert not stt_busy(FallbackSTT([BusySTT(), BusySTT(busy=True)], policy=POLICY))
    # Once the primary's breaker is open, calls reach the backup: its state is what counts.
    failing = FakeSTT(fail_first=1)
    chain = FallbackSTT([failing, BusySTT(busy=True)], policy=POLICY)
    assert not stt_busy(chain)
    await chain.transcribe(AudioChunk(bytes(320), 16_000))
    assert stt_busy(chain)


def test_a_language_router_is_busy_when_any_of_its_chains_is() -> None:
    assert stt_busy(LanguageRoutedSTT(BusySTT(), {"de": BusySTT(busy=True)}))
    assert not stt_busy(LanguageRoutedSTT(BusySTT(), {"de": FakeSTT()}))


async def test_warm_up_reaches_through_chains_routers_and_survives_a_failing_member() -> None:
    first, broken, last = BusySTT(), BusySTT(warmup_fails=True), BusySTT()
    router = LanguageRoutedSTT(FallbackSTT([first, broken], policy=POLICY), {"de": last})
    await warm_up(router)
    assert (first.warmups, broken.warmups, last.warmups) == (1, 1, 1)
    await warm_up(FakeSTT())  # nothing to warm: no error


def test_a_chain_hands_out_a_per_reply_voice_and_a_voiced_chain_keeps_it() -> None:
    plain = FakeTTS()
    assert tts_for_reply(plain) is plain
    chain = FallbackTTS([FakeTTS(), FakeTTS()], policy=POLICY)
    assert tts_for_reply(chain) is not chain
    voiced = VoicedTTS(chain, rate=1.2)
    view = tts_for_reply(voiced)
    assert isinstance(view, VoicedTTS)
    assert view.inner is not chain
    assert view.rate == 1.2
    assert tts_for_reply(VoicedTTS(plain, rate=1.2)).inner is plain


async def test_close_provider_closes_what_can_be_closed_and_ignores_the_rest() -> None:
    closed: list[str] = []

    class Closing:
        async def aclose(self) -> None:
            closed.append("closed")

    await close_provider(Closing())
    await close_provider(FakeSTT())
    assert closed == ["closed"]


async def test_a_transcript_still_flows_through_a_busy_chain() -> None:
    chain = FallbackSTT([BusySTT(busy=True)], policy=POLICY)
    assert isinstance(await chain.transcribe(AudioChunk(bytes(320), 16_000)), Transcript)
