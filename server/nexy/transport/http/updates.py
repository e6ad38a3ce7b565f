"""HTTP routes of the update feed: health, Sparkle appcasts, manifests and artifact downloads."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict

from nexy.updates.feed import APPCAST_PATHS, DOWNLOADS_PATH, UpdateFeed
from nexy.updates.manifest import CHANNELS

# Feeds and manifests change when a release is published; a cache in between would delay it.
_NO_CACHE = {"Cache-Control": "no-cache"}
_EMPTY_SUFFIX = re.compile(r"\s*bytes\s*=\s*-\s*0+\s*", re.IGNORECASE)


def update_routes(feed: UpdateFeed) -> list[web.RouteDef]:
    """The /updates/* routes over ``feed``; GET routes answer HEAD as well."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response(feed.health(), headers=_NO_CACHE)

    async def appcast(request: web.Request) -> web.Response:
        return _appcast(feed, request.query.get("channel", "stable"))

    async def appcast_beta(_: web.Request) -> web.Response:
        return _appcast(feed, "beta")

    async def manifest(request: web.Request) -> web.Response:
        channel = request.query.get("channel", "stable")
        if channel not in CHANNELS:
            return _unknown_channel(channel)
        found = feed.manifest(channel)
        if found is None:
            error = {"error": f"nothing is published on the {channel} channel"}
            return web.json_response(error, status=404, headers=_NO_CACHE)
        body = {**found.to_dict(), "url": feed.download_url(found, feed.origin)}
        return web.json_response(body, headers=_NO_CACHE)

    async def download(request: web.Request) -> web.StreamResponse:
        path = feed.download_path(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        # FileResponse answers Range (206/416), If-Range and HEAD, and streams via sendfile.
        return _ArtifactResponse(path, headers={"Content-Type": "application/octet-stream"})

    return [
        web.get("/updates/health", health),
        web.get(APPCAST_PATHS["stable"], appcast),
        web.get(APPCAST_PATHS["beta"], appcast_beta),
        web.get("/updates/manifest.json", manifest),
        web.get(DOWNLOADS_PATH + "/{name}", download),
    ]


class _ArtifactResponse(web.FileResponse):
    """A FileResponse that always sends the named file itself.

    Given an Accept-Encoding, FileResponse serves a sibling ``<name>.gz``/``<name>.br`` instead;
    in downloads/ such a sibling is another artifact, and its bytes would not match the
    signature or the Range offsets the client asked for.
    """

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Prepare as for a request that accepts no content encodings, with strict ranges."""
        headers = request.headers.copy()
        headers.popall(hdrs.ACCEPT_ENCODING, None)
        _check_if_range(headers, self._path)
        if _EMPTY_SUFFIX.fullmatch(headers.get(hdrs.RANGE, "")):
            # "The last 0 bytes" is unsatisfiable (RFC 9110 14.1.1), but aiohttp reads it as
            # the whole file; a range it cannot parse gets its 416 with Content-Range instead.
            headers[hdrs.RANGE] = "unsatisfiable"
        return await super().prepare(request.clone(headers=headers))


def _check_if_range(headers: CIMultiDict[str], path: Path) -> None:
    """Apply an entity-tag If-Range: a range of a changed file would splice two artifacts.

    aiohttp reads If-Range as a date only, so an entity tag would let the range through even
    when it names an older version of the file. A tag that differs (weak tags never match,
    RFC 9110 13.1.5) drops the range: the client gets the whole new file with 200.
    """
    if_range = headers.get(hdrs.IF_RANGE, "").strip()
    if not if_range.startswith(('"', "W/")) or hdrs.RANGE not in headers:
        return
    stat = path.stat()
    current = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'  # the ETag FileResponse sends
    if if_range != current:
        headers.popall(hdrs.RANGE)
    headers.popall(hdrs.IF_RANGE)


def add_update_routes(app: web.Application, feed: UpdateFeed) -> None:
    """Add the /updates/* routes to ``app``."""
    app.add_routes(update_routes(feed))


def _appcast(feed: UpdateFeed, channel: str) -> web.Response:
    if channel not in CHANNELS:
        return _unknown_channel(channel)
    text = feed.appcast(channel, feed.origin)
    return web.Response(text=text, content_type="application/xml", headers=_NO_CACHE)


def _unknown_channel(channel: str) -> web.Response:
    error = {"error": f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}"}
    return web.json_response(error, status=400)
