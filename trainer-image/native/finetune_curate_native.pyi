"""The curation step's per-line work (src/lib.rs): parse, validate, redact, hash, serialise, deduplicate."""

RULE_NAMES: list[str]
SHINGLE_BYTES: int
BANDS: int
ROWS: int
PERMUTATIONS: int
BYTES_PER_TOKEN: int
DUPLICATE: str
__version__: str

class Assessor:
    """The rules of one run; `assess` may be called from several threads at once (it releases the GIL)."""

    def __init__(
        self,
        min_success_rate: float,
        eval_fraction: float,
        near_duplicates: bool,
        max_tokens: int | None,
        keep_texts: bool,
        chat: bool = False,
    ) -> None:
        """`chat`: sessions become chat records (messages and tools), else instruction records."""
    def assess_block(
        self, source: str, first_number: int, block: bytes, start: int, end: int, max_line_bytes: int
    ) -> Assessed:
        """Assess `block[start:end]`: consecutive lines (the last may lack its newline) from line `first_number`.

        A line longer than `max_line_bytes` is malformed ("line of N bytes is too long").
        """

class Assessed:
    """One batch's assessment, line by line; duplicates are decided by `Deduplicator.admit`."""

    def __len__(self) -> int: ...
    def raw(self, index: int) -> bytes:
        """The line as read (without its newline)."""
    def rejected(self) -> dict[str, int]:
        """Rejections decided here (not the reader's), counted by outcome value."""
    def malformed(self) -> list[tuple[int, str, bool]]:
        """(index, message, whether the line is not JSON at all) of each malformed line, in order."""
    def conversation_rejections(self) -> list[tuple[int, str, str]]:
        """(index, outcome value, message) of each line a conversation's defect rejected (chat format), in order."""
    def outcome(self, index: int) -> tuple[str, str] | None:
        """(outcome value, detail) of a rejected line; None for a candidate."""
    def candidate(self, index: int) -> tuple[bytes, bool, int, int, list[int], dict[str, int]] | None:
        """A candidate's (line, is eval, cap key, exact digest, band keys, redactions); None if rejected."""
    def texts(self) -> list[tuple[int, str]]:
        """(index, the text maxTokens judges) of each candidate, if the Assessor keeps texts.

        Instruction records: "instruction\\ninput\\noutput"; chat records: every message's text, each call's name
        and arguments (JSON) and the tool definitions (JSON), one per line.
        """
    def reject_too_long(self, index: int) -> None:
        """Turn a candidate into a tooLong rejection (a tokenizer counted more than maxTokens)."""

class Deduplicator:
    """First occurrence wins: later exact or near copies of a kept session are duplicates."""

    exact_hits: int
    near_hits: int
    nbytes: int
    def __init__(self) -> None: ...
    def is_duplicate(self, digest: int, keys: list[int]) -> bool: ...
    def admit(self, assessed: Assessed) -> tuple[list[tuple[bool, bytes, int]], dict[str, int], int]:
        """Decide a batch's candidates in order: kept (is eval, line, cap key), their redactions by rule, duplicates."""

class CompactSet:
    """A set of 64-bit hashes in one flat open-addressing table (8-16 bytes a key)."""

    nbytes: int
    def __init__(self, capacity: int = ...) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: int) -> bool: ...
    def add(self, key: int) -> None: ...

def redact(text: str) -> tuple[str, dict[str, int]]:
    """`text` with every secret replaced, and the replacements by rule."""

def normalise(*fields: str) -> bytes:
    """ASCII-lowercased UTF-8 with all ASCII whitespace removed; fields NUL-separated."""

def count_lines(block: bytes, start: int, end: int) -> int:
    """How many lines `block[start:end]` holds: its newlines, plus a last line without one."""

def exact_digest(normalised: bytes) -> int: ...
def signature(text: bytes) -> list[int]: ...
def band_keys(texts: list[bytes]) -> list[list[int]]: ...
def is_eval(session_id: str, eval_fraction: float) -> bool: ...
def cap_key(session_id: str) -> int: ...
