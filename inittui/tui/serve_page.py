"""The HTML page ``inittui serve`` hands the browser.

textual-serve's own page loads a font from fonts.googleapis.com and has no <title>; this one
loads only the server's static files (textual.js, xterm.css, the bundled Roboto Mono), gives
the terminal the keyboard focus once it exists, and asks before a live tab is closed.
"""

from __future__ import annotations

import html

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="/static/css/xterm.css">
<script src="/static/js/textual.js"></script>
<style>
@font-face {{ font-family: "Roboto Mono";
  src: url("/static/fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }}
body {{ background: #0c181f; margin: 0; }}
.dialog-container {{ position: absolute; width: 100vw; height: 100vh; display: flex;
  align-items: center; justify-content: center; z-index: 10; }}
.intro {{ width: 640px; height: 240px; font: 16px "Roboto Mono", menlo, monospace;
  color: rgba(255, 255, 255, 0.95); background: #12232d; display: flex;
  align-items: center; justify-content: center; flex-direction: column; }}
body.-first-byte .intro-dialog {{ display: none; }}
body .textual-terminal {{ opacity: 0; }}
body.-first-byte .textual-terminal {{ opacity: 1; }}
.closed-dialog {{ display: none; }}
body.-closed .closed-dialog {{ display: flex; }}
button {{ padding: 16px 32px; background: #5e0ba7; color: white; border: none; margin: 16px;
  font-family: "Roboto Mono", menlo, monospace; cursor: pointer; }}
#start {{ display: none; }}
</style>
<script>
function refresh() {{
  const params = new URLSearchParams(window.location.search);
  params.delete("delay");
  window.location.href = window.location.pathname + "?" + params.toString();
}}
window.addEventListener("load", () => {{
  // Keys work at once, without a click: focus xterm's input once textual.js made it.
  let tries = 0;
  const timer = setInterval(() => {{
    const input = document.querySelector(".xterm-helper-textarea");
    if (input) input.focus();
    if (input || ++tries > 100) clearInterval(timer);
  }}, 50);
}});
window.addEventListener("beforeunload", (event) => {{
  // Closing the tab ends its app: rules not exported or saved are lost.
  const body = document.body.classList;
  if (body.contains("-first-byte") && !body.contains("-closed")) {{
    event.preventDefault();
    event.returnValue = "";
  }}
}});
</script>
</head>
<body>
<div class="dialog-container intro-dialog"><div class="intro">
  <div>{title}</div>
  <button type="button" onclick="refresh()" id="start">Start</button>
</div></div>
<div class="dialog-container closed-dialog"><div class="intro">
  <div class="message">Session ended.</div>
  <button type="button" onclick="refresh()">Restart</button>
</div></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{websocket_url}"
  data-font-size="{font_size}"></div>
</body>
</html>
"""


def render_page(title: str, websocket_url: str, font_size: int) -> str:
    """The page for one tab; ``websocket_url`` carries the token in its path."""
    return PAGE.format(
        title=html.escape(title),
        websocket_url=html.escape(websocket_url, quote=True),
        font_size=int(font_size),
    )
