"""reasoning: every shape of thinking, cut into pieces anywhere, gives the same thought and answer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_backend.reasoning import CLOSERS, TAGS, Split, Thought, answer_of, field_text

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
    assert split.shown() == split.shown().__class__("Thinking aloud more", "The answer", False, 1.0)


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
