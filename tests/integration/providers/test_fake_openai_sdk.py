"""The fake OpenAI server is faithful: the official ``openai`` SDK works against it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wav import read_wav, write_wav
from voxdialog.testing.fake_openai import (
    SPEECH_RATE,
    ChatReply,
    FakeOpenAIServer,
    FakeToolCall,
    Fault,
)
from voxdialog.testing.signals import tone

USER: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the weather in Oslo?"}
]


@pytest.fixture
async def client(fake: FakeOpenAIServer) -> AsyncIterator[AsyncOpenAI]:
    sdk = AsyncOpenAI(base_url=fake.url, api_key="k", max_retries=0)
    yield sdk
    await sdk.close()


async def test_sdk_streams_text_in_several_chunks_with_usage_last(
    fake: FakeOpenAIServer, client: AsyncOpenAI
) -> None:
    fake.replies.append(ChatReply(text="It is sunny and mild in Oslo."))
    stream = await client.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "It is sunny and mild in Oslo."
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7


async def test_sdk_reassembles_tool_calls_streamed_in_fragments(
    fake: FakeOpenAIServer, client: AsyncOpenAI
) -> None:
    calls = (
        FakeToolCall("get_weather", '{"city": "Oslo", "unit": "celsius"}', id="call_a"),
        FakeToolCall("get_time", '{"zone": "Europe/Oslo"}'),
    )
    fake.replies.append(ChatReply(tool_calls=calls))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    names: dict[int, str] = {}
    ids: dict[int, str] = {}
    arguments: dict[int, str] = {}
    fragments = 0
    finish = None
    async for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for call in choice.delta.tool_calls or []:
            fragments += 1
            if call.id:
                ids[call.index] = call.id
            if call.function and call.function.name:
                names[call.index] = call.function.name
            if call.function and call.function.arguments:
                arguments[call.index] = arguments.get(call.index, "") + call.function.arguments
    assert names == {0: "get_weather", 1: "get_time"}
    assert ids[0] == "call_a"
    assert ids[1].startswith("call_")
    assert json.loads(arguments[0]) == {"city": "Oslo", "unit": "celsius"}
    assert json.loads(arguments[1]) == {"zone": "Europe/Oslo"}
    assert fragments > 4  # arguments really came in pieces
    assert finish == "tool_calls"


async def test_sdk_reads_a_whole_completion_when_not_streaming(
    fake: FakeOpenAIServer, client: AsyncOpenAI
) -> None:
    fake.replies.append(ChatReply(text="Sunny.", tool_calls=(FakeToolCall("f", "{}"),)))
    completion = await client.chat.completions.create(model="m", messages=USER)
    message = completion.choices[0].message
    assert message.content == "Sunny."
    assert message.tool_calls is not None
    assert message.tool_calls[0].type == "function"
    assert message.tool_calls[0].function.name == "f"
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None


async def test_sdk_sees_reasoning_fields_and_ignores_comment_lines(
    fake: FakeOpenAIServer, client: AsyncOpenAI
) -> None:
    fake.stream_reasoning = fake.keepalive_comments = True
    fake.replies.append(ChatReply(text="Yes.", reasoning="Thinking hard here"))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    reasoning = ""
    text = ""
    async for chunk in stream:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        extra = delta.model_extra or {}
        reasoning += extra.get("reasoning_content") or extra.get("reasoning") or ""
    assert reasoning == "Thinking hard here"
    assert text == "Yes."


async def test_sdk_raises_on_an_error_object_mid_stream(
    fake: FakeOpenAIServer, client: AsyncOpenAI
) -> None:
    fake.inject(Fault(error_after=2, message="overloaded"))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="overloaded"):
        async for _ in stream:
            pass


async def test_sdk_reads_status_faults_as_their_error_classes(
    fake: FakeOpenAIServer, client: AsyncOpenAI
) -> None:
    fake.inject(Fault(status=429, retry_after="3", message="slow down"))
    with pytest.raises(openai.RateLimitError, match="slow down") as excinfo:
        await client.chat.completions.create(model="m", messages=USER)
    assert excinfo.value.response.headers["retry-after"] == "3"
    fake.api_key = "right"
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="m", messages=USER)


async def test_sdk_transcribes_a_wav_with_word_timestamps(
    fake: FakeOpenAIServer, client: AsyncOpenAI
) -> None:
    fake.transcript = "Turn on the lights."
    wav = write_wav(AudioChunk(tone(1500.0), 16_000))
    plain = await client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav, "audio/wav")
    )
    assert plain.text == "Turn on the lights."
    verbose = await client.audio.transcriptions.create(
        model="whisper-1",
        file=("clip.wav", wav, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word"],
        language="en",
    )
    assert verbose.duration == pytest.approx(1.5)
    assert verbose.words is not None
    assert [w.word for w in verbose.words] == ["Turn", "on", "the", "lights."]
    assert fake.requests[-1].file == wav
    assert fake.requests[-1].form["timestamp_granularities[]"] == ["word"]


async def test_sdk_streams_speech_as_pcm_and_wav(
    fake: FakeOpenAIServer, client: AsyncOpenAI
) -> None:
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="Hello there", response_format="pcm"
    ) as response:
        pcm = b"".join([part async for part in response.iter_bytes()])
    assert pcm == tone(len("Hello there") * 40.0, freq=440.0, rate=SPEECH_RATE)
    wav = await client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello there", response_format="wav"
    )
    assert read_wav(wav.content) == AudioChunk(pcm, SPEECH_RATE)
