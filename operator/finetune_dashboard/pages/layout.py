"""The page shell: navigation, API errors, the live-update hook (static/live.js) and styles."""

from __future__ import annotations

from collections.abc import Iterable

from finetune_dashboard.markup import Html, esc

NAV = (("/", "Jobs"), ("/registry", "Model registry"))


def page(title: str, body: Html, *, active: str, errors: Iterable[str] = (), version: int = 0) -> Html:
    nav = "".join(
        f'<a href="{href}"{" aria-current=page" if href == active else ""}>{esc(label)}</a>' for href, label in NAV
    )
    problems = "".join(f'<p class="error" role="alert">{esc(e)}</p>' for e in errors)
    return Html(
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} - finetune dashboard</title>"
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<script src="/static/live.js" defer></script>'
        "</head><body>"
        f'<header><nav aria-label="Sections">{nav}</nav>'
        '<label class="live"><input type="checkbox" id="live" checked> Live updates</label></header>'
        f'<main id="main" data-version="{version}">{problems}{body}</main>'
        "</body></html>"
    )


def fragment(body: Html, *, errors: Iterable[str] = (), version: int = 0) -> Html:
    """What a live update swaps into <main>: the same body without the shell."""
    problems = "".join(f'<p class="error" role="alert">{esc(e)}</p>' for e in errors)
    return Html(f'<div data-version="{version}">{problems}{body}</div>')


def select(name: str, label: str, options: Iterable[str], chosen: str) -> Html:
    items = ['<option value="">all</option>'] + [
        f'<option value="{esc(o)}"{" selected" if o == chosen else ""}>{esc(o)}</option>' for o in options
    ]
    return Html(
        f'<label for="f-{name}">{esc(label)}</label><select id="f-{name}" name="{name}">{"".join(items)}</select>'
    )


def table(caption: str, headers: Iterable[str], rows: Iterable[Iterable[object]], *, id_: str = "") -> Html:
    """Cells are escaped unless they are `Html`; None renders empty."""
    return table_markup(caption, headers, Html("".join(f"<tr>{cells(row)}</tr>" for row in rows)), id_=id_)


def cells(row: Iterable[object]) -> Html:
    """`<td>` per cell, escaped unless `Html`: what `table` writes inside each `<tr>`."""
    return Html("".join(f"<td>{esc(cell)}</td>" for cell in row))


def table_markup(caption: str, headers: Iterable[str], body: Html, *, id_: str = "") -> Html:
    """A table around `body`, its `<tr>` rows already markup."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    identity = f' id="{esc(id_)}"' if id_ else ""
    return Html(
        f"<table{identity}><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def definitions(pairs: Iterable[tuple[str, Html | str]]) -> Html:
    return Html("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs) + "</dl>")


def link(href: str, text: object) -> Html:
    return Html(f'<a href="{esc(href)}">{esc(text)}</a>')
