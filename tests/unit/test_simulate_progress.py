"""The progress bar: redrawn in place on a terminal, a line every 10% elsewhere."""

from __future__ import annotations

import io

from rota.simulate.progress import Bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_it_prints_a_line_every_tenth() -> None:
    out = io.StringIO()
    bar = Bar("p2c", 1000, out)
    for done in range(0, 1001, 50):
        bar(done)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[1].split("%")[0].strip() for line in lines] == [
        str(k * 10) for k in range(11)
    ]
    assert "\r" not in out.getvalue()


def test_on_a_terminal_it_redraws_one_line_and_ends_it() -> None:
    out = Terminal()
    bar = Bar("round_robin", 100, out)
    bar(0)
    bar(100)
    text = out.getvalue()
    assert text.startswith("\rround_robin") and text.endswith("\n")
    assert text.count("\n") == 1 and "100.0%" in text and "#" * 30 in text
