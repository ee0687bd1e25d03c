"""lstmq: batch LSTM inference over text collections (torch-free shared core).

``from lstmq import Client`` gives the client of the HTTP API (``lstmq.client``).
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from lstmq.client import Client

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]


def __getattr__(name: str):
    if name == "Client":
        # Loaded on first use: `import lstmq` (every CLI start, every worker) stays cheap.
        from lstmq.client import Client

        return Client
    raise AttributeError(f"module 'lstmq' has no attribute {name!r}")
