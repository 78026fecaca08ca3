"""Exit 1 when the installed llama.cpp build is not the portable one (AVX-512/AMX compiled in), else 0.

It only reads llama.cpp's system info (no model runs), so it is safe even where that build would crash.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advisor.doctor import NON_PORTABLE, compiled_features  # noqa: E402


def main() -> int:
    try:
        import llama_cpp
    except ImportError as exc:
        print(f"llama-cpp-python is not importable: {exc}", file=sys.stderr)
        return 1
    raw = llama_cpp.llama_print_system_info()
    features = compiled_features(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
    risky = [f for f in features if f in NON_PORTABLE]
    print(f"llama.cpp build features: {', '.join(features)}")
    if risky:
        print(f"not portable: {', '.join(risky)} compiled in", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
