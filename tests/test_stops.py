from modelgrid.stops import StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    shown = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        shown.append(text)
        if stopped:
            return "".join(shown), True
    return "".join(shown) + matcher.flush(), False


def test_without_stops_text_passes_through() -> None:
    assert feed_all(StopMatcher([]), ["a", "b"]) == ("ab", False)


def test_stop_inside_one_piece_cuts_before_it() -> None:
    assert feed_all(StopMatcher(["END"]), ["hello END world"]) == ("hello ", True)


def test_stop_split_across_pieces_is_caught_and_never_shown() -> None:
    matcher = StopMatcher(["</s>"])
    assert matcher.feed("text <") == ("text ", False)  # "<" might start the stop
    assert matcher.feed("/") == ("", False)
    assert matcher.feed("s> more") == ("", True)


def test_held_text_is_released_when_it_turns_out_not_to_be_a_stop() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("ST") == ("", False)
    assert matcher.feed("AR") == ("STAR", False)


def test_held_text_is_flushed_at_the_end() -> None:
    assert feed_all(StopMatcher(["STOP"]), ["go ST"]) == ("go ST", False)


def test_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopMatcher(["b", "a"]), ["xxabyy"]) == ("xx", True)
