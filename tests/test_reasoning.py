"""reasoning: every shape of thinking, cut into pieces anywhere, gives the same thought and answer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_backend import errors
from chat_backend.client import ChatClient
from chat_backend.config import Settings
from chat_backend.errors import REDACTED
from chat_backend.reasoning import CLOSERS, TAGS, Shown, Split, Thought, _tag_start, answer_of, field_text
from chat_backend.visitor_settings import ChatSettings
from tests.fake_api import THINKING_SHAPES, FakeAPI, Reply

KEY = "reasoning-key-5e2b77"

# Text that often holds parts of the tags, so that cuts inside a tag and near-tags ("</thin", "<mm:") are tried.
NEAR = ["<", "/", ">", "think", "mm:", "</thin", "<think", "<mm:think", "\n", " "]
TEXT = st.lists(st.sampled_from(NEAR) | st.text(max_size=6), max_size=12).map("".join)
THOUGHT = TEXT.filter(lambda text: not any(closer in text for closer in CLOSERS))
ANSWER = TEXT.filter(lambda text: not text[:1].isspace())
SPACE = st.sampled_from(["", "\n", "\n\n", " "])


def cuts(text: str, data: st.DataObject) -> list[str]:
    """`text` cut at places hypothesis chooses (anywhere, including inside a tag)."""
    places = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=8)))
    return [text[a:b] for a, b in itertools.pairwise([0, *places, len(text)])]


def feed(split: Split, pieces: list[str], *, complete: bool = True) -> list[str]:
    out = [shown for piece in pieces for shown in split.content(piece)]
    return out + split.end(complete)


def joined(pieces: list[str], thought: bool) -> str:
    return "".join(piece for piece in pieces if isinstance(piece, Thought) == thought)


@given(TEXT, st.sampled_from([CLOSERS, tuple(TAGS), *((tag,) for tag in [*TAGS, *CLOSERS])]))
def test_the_tail_held_as_a_possible_tag_is_the_longest_that_could_begin_one(text: str, tags: tuple[str, ...]) -> None:
    """`_tag_start` looks only from a "<" (per token, one scan): the longest tail that begins a tag, found by trying
    every length, is the same."""
    every = [size for size in range(1, len(text) + 1) for tag in tags if tag.startswith(text[-size:])]
    longest = max([size for size in every if size < max(map(len, tags))], default=0)
    assert _tag_start(text, tags) == longest


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(TAGS.items())), THOUGHT, ANSWER, SPACE, SPACE, st.booleans(), st.data())
def test_tagged_thinking_is_apart_from_the_answer_however_it_is_cut(
    tags: tuple[str, str], thought: str, answer: str, before: str, after: str, starts: bool, data: st.DataObject
) -> None:
    opener, closer = tags
    split = Split(starts_thinking=starts)
    shown = feed(split, cuts(before + opener + thought + closer + after + answer, data))
    assert (split.thought, split.answer, split.cut) == (thought, answer, False)
    assert (joined(shown, True), joined(shown, False)) == (thought, answer)  # live pieces went to the right place


@settings(max_examples=300, deadline=None)
@given(THOUGHT, ANSWER, st.sampled_from(CLOSERS), SPACE, st.booleans(), st.data())
def test_a_reply_that_begins_inside_the_thinking_is_moved_at_its_closing_tag(
    thought: str, answer: str, closer: str, after: str, starts: bool, data: st.DataObject
) -> None:
    content = thought + closer + after + answer
    if any(content.lstrip().startswith(opener) for opener in TAGS):
        return  # that reply opens with a tag after all: the test above
    split = Split(starts_thinking=starts)
    shown = feed(split, cuts(content, data))
    assert (split.thought, split.answer) == (thought, answer)
    if starts:  # a model that always thinks first: the thought was shown as thought from its first piece
        assert (joined(shown, True), joined(shown, False)) == (thought, answer)


@settings(max_examples=300, deadline=None)
@given(TEXT.filter(lambda text: not any(closer in text for closer in CLOSERS)), st.booleans(), st.data())
def test_a_reply_without_thinking_is_all_answer_as_sent(content: str, starts: bool, data: st.DataObject) -> None:
    if any(content.lstrip().startswith(opener) for opener in TAGS):
        return
    split = Split(starts_thinking=starts)
    feed(split, cuts(content, data))
    assert (split.thought, split.answer, split.cut) == ("", content, False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=6), ANSWER, st.data())
def test_thinking_in_a_field_of_its_own_leaves_the_content_as_the_answer(
    thinking: list[str], answer: str, data: st.DataObject
) -> None:
    if answer.startswith(tuple(TAGS)):
        return  # content that opens with a tag is inline thinking, whatever came before
    split = Split(starts_thinking=True)
    shown = [piece for text in thinking for piece in split.reasoning(text)]
    shown += feed(split, cuts(answer, data))
    assert (split.thought, split.answer) == ("".join(thinking), answer)
    assert (joined(shown, True), joined(shown, False)) == ("".join(thinking), answer)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.booleans(), st.booleans(), st.data())
def test_any_content_never_raises_loses_or_invents_text(
    content: str, starts: bool, complete: bool, data: st.DataObject
) -> None:
    split = Split(starts_thinking=starts)
    feed(split, cuts(content, data), complete=complete)
    tags_removed = len(content) - len(split.thought) - len(split.answer)
    assert tags_removed >= 0
    assert split.thought in content and split.answer in content


@pytest.mark.parametrize(
    ("complete", "thought", "answer", "cut"),
    [(True, "", "Paris is the capital.", False), (False, "Paris is the capital.", "", True)],
)
def test_a_guess_that_was_never_closed_is_settled_by_how_the_reply_ended(
    complete: bool, thought: str, answer: str, cut: bool
) -> None:
    """A model that always thinks, through a gateway that stripped the thinking: shown as thought while it streams,
    the answer once the reply ends complete; cut (Stop, max_tokens) it stays a thought, marked cut."""
    split = Split(starts_thinking=True)
    assert all(isinstance(piece, Thought) for piece in split.content("Paris is the capital."))
    split.end(complete)
    assert (split.thought, split.answer, split.cut) == (thought, answer, cut)


def test_thinking_that_never_closes_keeps_what_came_and_is_cut() -> None:
    split = Split()
    split.content("<think>Let me count: 1, 2, 3</thi")
    assert split.shown().thinking and split.thought == "Let me count: 1, 2, 3"  # the tag's start is held back
    split.end(complete=False)
    assert (split.thought, split.answer, split.cut) == ("Let me count: 1, 2, 3</thi", "", True)


def test_thinking_in_a_field_with_no_answer_yet_is_still_thinking_and_cut_if_it_ends_so() -> None:
    split = Split()
    split.reasoning("Weighing the options")
    assert split.shown().thinking
    split.content("")
    assert split.shown().thinking
    split.end(complete=False)
    assert split.cut and split.thought == "Weighing the options"


def test_times_follow_the_pieces_and_a_guess_moves_them_too() -> None:
    now = iter(range(100))
    split = Split(clock=lambda: float(next(now)))
    split.content("Thinking aloud")  # no tag, no field: shown as the answer at t=0
    assert split.answer_started == 0 and split.thought_started is None and not split.shown().thinking
    split.content(" more</think>\n\nThe answer")  # the closing tag: it was the thought, from t=0
    assert (split.thought_started, split.answer_started) == (0, 1)
    assert split.shown() == Shown("Thinking aloud more", "The answer", thinking=False, thought_seconds=1.0)


def test_a_whole_answer_in_one_piece() -> None:
    split = Split()
    content = '<think>\nThe user says "Hello".\n</think>\n\nHello! How can I help you today?'  # minimax/m2's page
    split.content(content)
    split.end(complete=True)
    assert (split.thought, split.answer) == ('\nThe user says "Hello".\n', "Hello! How can I help you today?")


@pytest.mark.parametrize(
    ("part", "text"),
    [
        ({"reasoning_content": "a"}, "a"),
        ({"reasoning": "b"}, "b"),
        (
            {"reasoning_details": [{"type": "reasoning.text", "text": "c"}, {"type": "reasoning.text", "text": "d"}]},
            "cd",
        ),
        ({"reasoning": "same", "reasoning_details": [{"type": "reasoning.text", "text": "same"}]}, "same"),
        ({"reasoning_content": "", "reasoning": "e"}, "e"),
        ({"reasoning_details": [{"type": "reasoning.encrypted", "data": "xx"}, "junk", None]}, ""),
        ({"reasoning_content": None, "reasoning": {"effort": "high"}, "content": "answer"}, ""),
        ("not a delta", ""),
        (None, ""),
    ],
)
def test_field_text_reads_one_field_and_ignores_odd_values(part: object, text: str) -> None:
    assert field_text(part) == text


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("<think>hmm</think>\n\nHi", "Hi"),
        ("\n<mm:think>hmm</mm:think>Hi", "Hi"),
        ("<think>never closed", ""),
        ("Say </think> to close a block.", "Say </think> to close a block."),
        ("Plain answer", "Plain answer"),
    ],
)
def test_answer_of_drops_only_a_leading_thinking_block(text: str, answer: str) -> None:
    assert answer_of(text) == answer


# Through the client and the stand-in over HTTP: every shape, streamed or whole, cut or stopped.

THOUGHT, ANSWER = "The user greets me. A short friendly reply.", "Hello! How can I help?"


def reasoning_client(api: FakeAPI) -> ChatClient:
    client = ChatClient(Settings(api_key=KEY, base_url=api.base_url, read_timeout=10.0, retry_budget=1.0))
    assert client.catalogue.refresh()
    return client


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("shape", THINKING_SHAPES)
@pytest.mark.parametrize("model", ["minimax/m2", "minimax/minimax-m3"])  # thinks always / when it judges so
def test_every_shape_gives_the_thought_apart_from_the_answer(
    fake_api: FakeAPI, shape: str, stream: bool, model: str
) -> None:
    fake_api.script(Reply(text=ANSWER, thinking=THOUGHT, thinking_shape=shape, delay=0.01))
    with reasoning_client(fake_api) as client:
        chat = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings(model=model, stream=stream))
        with chat:
            pieces = list(chat)
    result = chat.result
    assert result is not None
    if shape == "prefilled" and model == "minimax/minimax-m3":  # the closing tag tells, once it comes
        assert (result.thought, result.text) == (THOUGHT, ANSWER)
    else:
        assert (joined(pieces, True), joined(pieces, False)) == (THOUGHT, ANSWER)
    assert (result.thought, result.text, result.thought_cut, result.finish_reason) == (THOUGHT, ANSWER, False, "stop")
    assert result.usage is not None and result.usage.reasoning_tokens == 8
    assert result.time_to_first_thought is not None and result.time_to_first_token is not None
    assert result.time_to_first_thought <= result.time_to_first_token <= result.duration
    if stream and not (shape == "prefilled" and model == "minimax/minimax-m3"):
        assert result.thought_seconds is not None and result.thought_seconds >= 0.05  # 8 pieces 10 ms apart


@pytest.mark.parametrize("shape", ["think", "reasoning_content"])
def test_max_tokens_inside_the_thinking_keeps_what_came_and_says_it_was_cut(fake_api: FakeAPI, shape: str) -> None:
    fake_api.script(Reply(text=ANSWER, thinking=THOUGHT, thinking_shape=shape))
    with reasoning_client(fake_api) as client:
        result = client.complete([{"role": "user", "content": "Hi"}], ChatSettings.of(model="minimax/m2", max_tokens=4))
    assert result.thought == "The user greets me." and result.text == ""
    assert result.thought_cut and result.finish_reason == "length"


def test_a_stream_cut_while_thinking_keeps_the_thought(fake_api: FakeAPI) -> None:
    fake_api.script(Reply(text=ANSWER, thinking=THOUGHT, thinking_shape="mm:think", drop_after=3))
    with reasoning_client(fake_api) as client:
        chat = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings(model="minimax/minimax-m3"))
        with pytest.raises(errors.ChatError), chat:
            list(chat)
    assert chat.result is not None and chat.result.thought == "The user greets" and chat.result.thought_cut
    assert chat.shown().thought == "The user greets" and not chat.shown().answer


def test_stop_while_thinking_keeps_the_thought_marked_cut(fake_api: FakeAPI) -> None:
    fake_api.script(Reply(text=ANSWER, thinking=THOUGHT, thinking_shape="reasoning_content", stall_after=2))
    with reasoning_client(fake_api) as client:
        chat = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings(model="minimax/m2"))
        with chat:
            for piece in chat:  # Stop at the first piece of thinking
                assert isinstance(piece, Thought) and chat.shown().thinking
                shown = chat.shown().thought
                break
    assert chat.result is not None and chat.result.thought == shown and chat.result.thought_cut
    assert shown and THOUGHT.startswith(shown)


@pytest.mark.parametrize("shape", THINKING_SHAPES)
def test_a_key_split_between_the_thought_and_the_answer_shows_in_neither(fake_api: FakeAPI, shape: str) -> None:
    """Each half alone is not the key (an adversarial review showed one in the thought, the other in the answer):
    a long piece of the key is hidden wherever it is shown."""
    half = len(KEY) // 2
    fake_api.script(Reply(text=KEY[half:] + " tail", thinking="head " + KEY[:half], thinking_shape=shape))
    with reasoning_client(fake_api) as client:
        chat = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings(model="minimax/m2"))
        with chat:
            seen = [chat.shown() for _ in chat]
    assert chat.result is not None
    assert (chat.result.thought, chat.result.text) == (f"head {REDACTED}", f"{REDACTED} tail")
    assert not any(KEY[:half] in moment.thought or KEY[half:] in moment.answer for moment in seen)


def test_the_key_is_never_shown_in_a_thought(fake_api: FakeAPI) -> None:
    thinking = f"Their key is {KEY[:6]} {KEY[6:]} no, {KEY}."
    fake_api.script(Reply(text="Fine.", thinking=thinking, thinking_shape="reasoning", chunks=["Fine."]))
    with reasoning_client(fake_api) as client:
        chat = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings(model="minimax/m2"))
        with chat:
            seen = [chat.shown().thought for _ in chat]
    assert chat.result is not None and KEY not in chat.result.thought and REDACTED in chat.result.thought
    assert not any(KEY in thought for thought in seen)
