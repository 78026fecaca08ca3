"""One error tree for the core; every message names what went wrong and how to fix it."""


class AdvisorError(Exception):
    """Base of all expected failures; the CLI prints the message without a traceback."""

    exit_code = 1


class InputError(AdvisorError):
    """Bad user input: a file, a field, an option."""

    exit_code = 2


class BackendError(AdvisorError):
    """A runtime (embedded, OpenAI-compatible server, Ollama) failed or answered badly."""


class BackendUnreachable(BackendError):
    """The server could not be reached at all; nothing more can be measured there."""


class ModelNotFound(BackendError):
    """The runtime does not have the model asked for."""


class WorkerCrashed(BackendError):
    """The llama.cpp worker process died (signal, OOM kill); the message names the model, the signal and the fix."""


class StoreError(AdvisorError):
    """The measurement store could not be opened or written."""


class KnowledgeError(InputError):
    """A knowledge/ file is malformed or a fact lacks its source."""
