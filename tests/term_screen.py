"""A small VT100 screen for pty tests: what the operator would see, not the raw byte stream.

Enough of the terminal for line-oriented programs and prompt_toolkit's renderer: printable text,
CR/LF/BS/TAB, cursor moves (CSI A B C D G H f), erases (CSI J K X), and an answer to a cursor
position request (CSI 6n), as a real terminal gives. Colours and modes are ignored.
"""
from __future__ import annotations

import re
import time

import pexpect


class Screen:
    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.history: list[str] = []  # lines scrolled off the top
        self.r = self.c = 0
        self.autowrap = True
        self._pending = ""  # an escape sequence split across reads

    def feed(self, data: str) -> str:
        """Apply output; returns what the terminal answers (cursor position reports)."""
        data, self._pending = self._pending + data, ""
        replies = []
        i = 0
        while i < len(data):
            ch = data[i]
            if ch == "\x1b":
                m = re.match(r"\x1b\[([?>=]?)([0-9;]*)([ -/]*)([@-~])", data[i:])
                if m:
                    replies.append(self._csi(m.group(1), m.group(2), m.group(4)))
                    i += m.end()
                    continue
                osc = re.match(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)", data[i:])
                if osc:
                    i += osc.end()
                    continue
                if i + 1 < len(data) and data[i + 1] not in "[]":
                    i += 3 if data[i + 1] in "()" else 2  # charset selection, keypad modes, save/restore
                    continue
                self._pending = data[i:]  # incomplete: wait for the rest
                break
            self._char(ch)
            i += 1
        return "".join(replies)

    def _char(self, ch: str) -> None:
        if ch == "\r":
            self.c = 0
        elif ch == "\n":
            self._linefeed()
        elif ch == "\b":
            self.c = max(0, self.c - 1)
        elif ch == "\t":
            self.c = min(self.cols - 1, (self.c // 8 + 1) * 8)
        elif ch >= " ":
            if self.c >= self.cols:
                if not self.autowrap:
                    self.c = self.cols - 1
                else:
                    self.c = 0
                    self._linefeed()
            self.grid[self.r][self.c] = ch
            self.c += 1

    def _linefeed(self) -> None:
        if self.r == self.rows - 1:
            self.history.append("".join(self.grid.pop(0)).rstrip())
            self.grid.append([" "] * self.cols)
        else:
            self.r += 1

    def _csi(self, private: str, params: str, final: str) -> str:
        nums = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = max(1, nums[0]) if nums else 1
        if private == "?":
            if params == "7":
                self.autowrap = final == "h"
            return ""
        if final == "A":
            self.r = max(0, self.r - n)
        elif final == "B":
            self.r = min(self.rows - 1, self.r + n)
        elif final == "C":
            self.c = min(self.cols - 1, self.c + n)
        elif final == "D":
            self.c = max(0, min(self.c, self.cols - 1) - n)
        elif final == "G":
            self.c = min(self.cols - 1, n - 1)
        elif final in "Hf":
            self.r = min(self.rows - 1, (nums[0] if nums and nums[0] else 1) - 1)
            self.c = min(self.cols - 1, (nums[1] if len(nums) > 1 and nums[1] else 1) - 1)
        elif final == "J":
            mode = nums[0] if nums else 0
            rows = {0: range(self.r + 1, self.rows), 1: range(0, self.r), 2: range(self.rows)}.get(mode, range(0))
            for r in rows:
                self.grid[r] = [" "] * self.cols
            if mode in (0, 1):
                self._erase_line(mode)
        elif final == "K":
            self._erase_line(nums[0] if nums else 0)
        elif final == "X":
            for c in range(self.c, min(self.cols, self.c + n)):
                self.grid[self.r][c] = " "
        elif final == "n" and nums == [6]:
            return f"\x1b[{self.r + 1};{min(self.c, self.cols - 1) + 1}R"
        return ""

    def _erase_line(self, mode: int) -> None:
        line = self.grid[self.r]
        cols = {0: range(min(self.c, self.cols), self.cols), 1: range(0, min(self.c + 1, self.cols)),
                2: range(self.cols)}.get(mode, range(0))
        for c in cols:
            line[c] = " "

    def display(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.grid]

    def lines(self) -> list[str]:
        """Everything on screen and scrolled above it, trailing blank lines dropped."""
        out = self.history + self.display()
        while out and not out[-1]:
            out.pop()
        return out

    def cursor_line(self) -> str:
        return "".join(self.grid[self.r]).rstrip()


class Term:
    """A pexpect child seen through a Screen; `expect` waits for a pattern on what is shown."""

    def __init__(self, child: pexpect.spawn, rows: int, cols: int) -> None:
        self.child = child
        self.screen = Screen(rows, cols)
        self.raw = ""
        self.eof = False

    def pump(self, timeout: float = 0.05) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.eof = True
            return
        self.raw += data
        reply = self.screen.feed(data)
        if reply:
            self.child.send(reply)

    def text(self) -> str:
        return "\n".join(self.screen.lines())

    def expect(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.eof or time.monotonic() > deadline:
                why = "the program ended" if self.eof else f"{timeout} s passed"
                raise AssertionError(f"{why} without {pattern!r} on screen:\n{self.text()}")
            self.pump()

    def wait_eof(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s:\n{self.text()}")
            self.pump(0.2)
