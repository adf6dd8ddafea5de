"""How a stage talks to the person running it: the CLI's rich console, or the log when there is none."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def say(console, message: str) -> None:
    """Show a progress or status line.

    Args:
        console: the CLI's `rich.console.Console`; None when a stage runs as a library (tests,
            notebooks) or on a torchrun rank other than 0, where the line goes to the log instead.
        message: the line, with rich markup (`[green]...[/]`); the log gets it without the markup.
    """
    if console is not None:
        console.print(message)
        return
    from rich.text import Text

    log.info(Text.from_markup(message).plain)
