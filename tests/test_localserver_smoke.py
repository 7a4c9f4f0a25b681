import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bridge.devtools.localserver import serving


async def hello(request):
    return PlainTextResponse("hi")


async def test_localserver_serves_on_loopback():
    app = Starlette(routes=[Route("/", hello)])
    async with serving(app) as server, httpx.AsyncClient() as client:
        r = await client.get(server.url + "/")
    assert r.text == "hi"
