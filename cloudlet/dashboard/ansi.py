"""Terminal output to HTML: SGR colours become classes, every other escape sequence goes away.

Build tools (uv, pip) and servers (uvicorn) colour their output. The dashboard keeps the
foreground colours and bold/dim/italic/underline, drops cursor movement, OSC titles and links,
and simulates carriage returns (a progress bar rewrites its line: only the last state is kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup, escape

# CSI (ESC [ params final), OSC (ESC ] ... BEL | ESC \), and two-byte escapes (ESC X).
_ESCAPE = re.compile(
    r"\x1b(?:\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])"
)
# C0 controls other than tab and newline, DEL, and C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]")


@dataclass
class _Style:
    fg: int | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False

    def classes(self) -> str:
        names = []
        if self.fg is not None:
            names.append(f"a-fg{self.fg}")
        if self.bold:
            names.append("a-b")
        if self.dim:
            names.append("a-d")
        if self.italic:
            names.append("a-i")
        if self.underline:
            names.append("a-u")
        return " ".join(names)

    def reset(self) -> None:
        self.fg = None
        self.bold = self.dim = self.italic = self.underline = False

    def apply(self, params: str) -> None:
        codes = [int(p) if p.isdigit() else 0 for p in re.split(r"[;:]", params)] if params else [0]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code == 0:
                self.reset()
            elif code == 1:
                self.bold = True
            elif code == 2:
                self.dim = True
            elif code == 3:
                self.italic = True
            elif code == 4:
                self.underline = True
            elif code == 22:
                self.bold = self.dim = False
            elif code == 23:
                self.italic = False
            elif code == 24:
                self.underline = False
            elif 30 <= code <= 37:
                self.fg = code - 30
            elif 90 <= code <= 97:
                self.fg = code - 90 + 8
            elif code == 39:
                self.fg = None
            elif code in (38, 48):
                # Extended colours: 38;5;N (256 colours) or 38;2;R;G;B. The first 16 of the
                # 256-colour palette are the classic ones; other colours fall back to default.
                mode = codes[i + 1] if i + 1 < len(codes) else None
                if mode == 5 and i + 2 < len(codes):
                    if code == 38:
                        self.fg = codes[i + 2] if codes[i + 2] < 16 else None
                    i += 2
                elif mode == 2:
                    i += 4
            i += 1


def last_overwrite(line: str) -> str:
    """What a terminal shows for a line that used carriage returns to redraw itself."""
    line = line.rstrip("\r\n")
    return line.rsplit("\r", 1)[-1] if "\r" in line else line


def ansi_to_html(text: str) -> Markup:
    """Escape `text` for HTML, turning colour codes into `<span class="a-...">`."""
    text = "\n".join(last_overwrite(line) for line in text.split("\n"))
    style = _Style()
    out: list[str] = []
    pos = 0

    def emit(chunk: str) -> None:
        chunk = _CONTROL.sub("", chunk)
        if not chunk:
            return
        classes = style.classes()
        if classes:
            out.append(f'<span class="{classes}">{escape(chunk)}</span>')
        else:
            out.append(str(escape(chunk)))

    for match in _ESCAPE.finditer(text):
        emit(text[pos : match.start()])
        pos = match.end()
        params, final = match.group("params"), match.group("final")
        if final == "m" and params is not None and not params.startswith(("?", "<", "=", ">")):
            style.apply(params)
    emit(text[pos:])
    return Markup("".join(out))


def strip_ansi(text: str) -> str:
    return _CONTROL.sub("", _ESCAPE.sub("", text))
