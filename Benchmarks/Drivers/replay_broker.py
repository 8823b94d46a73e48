"""A zero-work stand-in broker for measuring a consumer's own ceiling.

librdkafka's mock cluster keeps only about 5 MB per partition, so it cannot show how fast a consumer
reads millions of records when the broker costs nothing. This module does it another way:

  1. `Recorder` sits between the consumer and a real broker (which must advertise the recorder's
     address) and keeps every response frame with the request it answered;
  2. `Replayer` then listens on the same address, in place of the broker, and answers each request
     with a recorded response (its correlation id patched in). It reads no files and encodes nothing:
     the consumer gets the very bytes the broker sent, as fast as loopback carries them.

Fetches are answered by offset: a fetch at offset X gets the recorded answer to the fetch that began
at or before X and after which the next recorded fetch began, as a broker would answer it (the
batch holding X comes first; the client skips the records before X). So a consumer whose fetches do
not start exactly where they did while recording (after a retry, say) is still served. Any other
request gets the recorded answer to the identical request, or else to the latest request with the
same API key and version (a Metadata refresh asking in another way). Fetches past the recorded end
are not answered (the run has all its records by then). One partition, Fetch v4 to v12. Loopback only.
The frames are read with the harness's Kafka codec (petrel_harness.wire).
"""
import asyncio
import bisect
import threading
import time

from petrel_harness.wire import FETCH, fetch_offset, read_frame, request_api, request_key, with_correlation_id

LOOPBACK = "127.0.0.1"


class _LoopThread:
    """An asyncio loop on its own thread, so the load generator can run in the foreground. Used as a
    context manager, it serves each connection to `port` with the subclass's `_serve(reader, writer)`."""

    def __init__(self, port):
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None

    def __enter__(self):
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, LOOPBACK, self.port), self.loop).result(10)
        return self

    def __exit__(self, *_):
        async def close():
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Recording:
    """What a Recorder kept: answers to fetches by their offset, and to everything else by request."""

    def __init__(self):
        self.fetches = {}  # fetch offset -> the first answer with records from there
        self.others = {}  # request key -> answer
        self.by_api = {}  # (API key, version) -> the latest answer
        self._starts = None  # sorted fetch offsets, once replaying

    def keep(self, request, response):
        if request_api(request)[0] == FETCH:
            # An answer without records (a long poll at the end of the log) is not worth replaying.
            if len(response) > 256:
                self.fetches.setdefault(fetch_offset(request), response)
        else:
            self.others[request_key(request)] = response
            self.by_api[request_api(request)] = response

    def answer(self, request):
        """The recorded answer for `request`, or None."""
        if request_api(request)[0] == FETCH:
            if self._starts is None:
                self._starts = sorted(self.fetches)
            starts = self._starts
            index = bisect.bisect_right(starts, fetch_offset(request)) - 1
            # Past the last recorded start there is no telling where the recorded records end.
            if index < 0 or index == len(starts) - 1 and fetch_offset(request) != starts[-1]:
                return None
            return self.fetches[starts[index]]
        return self.others.get(request_key(request)) or self.by_api.get(request_api(request))


class Recorder(_LoopThread):
    """A proxy from `port` to a broker on `upstream_port` that records the exchanges while
    `recording` is set."""

    def __init__(self, port, upstream_port):
        super().__init__(port)
        self.upstream_port = upstream_port
        self.recording = False
        self.kept = Recording()

    async def _serve(self, client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        try:
            while (request := await read_frame(client_reader)) is not None:
                upstream_writer.write(request)
                response = await read_frame(upstream_reader)
                if response is None:
                    break
                if self.recording:
                    self.kept.keep(request, response)
                client_writer.write(response)
                await client_writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass  # stopped, or the client went away
        finally:
            upstream_writer.close()
            client_writer.close()


class Replayer(_LoopThread):
    """Answers requests on `port` from a Recording, one request at a time per connection (as a broker
    does)."""

    def __init__(self, port, recording):
        super().__init__(port)
        self.recording = recording
        self.unanswered = []  # (API key, version) of each request with no recorded answer
        # Seconds each fetch answer is held back (consume-shape.py sets it between runs). It blocks the
        # loop (time.sleep): asyncio's timers round below a millisecond up, and a consumer has one fetch
        # in flight anyway.
        self.fetch_delay = 0.0

    async def _serve(self, reader, writer):
        try:
            while (request := await read_frame(reader)) is not None:
                response = self.recording.answer(request)
                if response is None:
                    self.unanswered.append(request_api(request))
                    await asyncio.sleep(3600)  # nothing recorded: let the run time out
                if self.fetch_delay and request_api(request)[0] == FETCH:
                    time.sleep(self.fetch_delay)
                writer.write(with_correlation_id(response, request))
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass  # stopped, or the client went away
        finally:
            writer.close()
