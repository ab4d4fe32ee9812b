"""A grammar-aware generator and mutator of .gds text for the fuzz tests.

Scripts are derived from the grammar graphdsl itself loads (its Lark LALR rules and terminals), so the
generator follows the language as it changes: a new statement or operator is generated as soon as it is in
grammar/gds.lark. Choices come from a `random.Random` seeded by hypothesis, so each case is reproducible
from its seed. Terminals are drawn from vocabularies that reach the checks behind the parser: real op
names and attributes, option names, the small test model's tensor names, literals at the edges of what
Python can read, and strings that are paths.
"""

from __future__ import annotations

import random
from collections import defaultdict

from lark.grammar import NonTerminal, Terminal

from graphdsl.syntax.parser import _parser

OPS = ["Relu", "Conv", "Add", "Mul", "MatMul", "Gemm", "LeakyRelu", "Sigmoid", "Softmax", "Reshape", "Concat",
       "Cast", "Clip", "Identity", "If", "Loop", "Gelu", "Erf", "Div", "HardSwish", "Reluu", "Constant"]
ATTRS = ["alpha", "axis", "group", "pads", "perm", "to", "kernel_shape", "strides", "grup", "value", "axes"]
OPTIONS = ["size_threshold", "fold_shapes", "partitioning", "flatten_subgraphs", "remove_unused_graph_inputs",
           "remove_unused_functions", "atol", "rtol", "samples", "seed", "data", "external", "ir_version",
           "input_index", "shape", "tol", "threshold"]
MODEL_NAMES = ["x", "y", "h", "hb", "hc", "y0", "w1", "b1", "w2", "lo", "mm1", "add1", "clip", "mm2",
               "softmax"]
WORDS = ["N", "batch", "on", "off", "true", "no", "float16", "float32", "int64", "bfloat16", "SAME_UPPER",
         "pi", "e", "inf", "sqrt", "min", "max", "len", "int", "float", "exp", "log", "abs", "_", "x1",
         "model", "shape", "to", "fold", "cleanup", "node", "rule", "match", "where", "import", "std", "com",
         "microsoft"]
STRINGS = ['"x"', '"y"', '"w1"', '"mm1"', '"std/tidy.gds"', '"std/nope.gds"',
           '"lib.gds"', '"cycle_a.gds"', '"has_model.gds"', '"bad_utf8.gds"', '"missing.gds"', '"."', '""',
           '"out.onnx"', '"out/sub/m.onnx"', '"m.onnx"', '"w.data"', '"../up.data"', '"calib.npz"',
           '"com.example.plugins"', '"/model.0/conv/Conv"', '"onnx::Add_12"', '"a\\"b"', '"tab\\tnl\\n"',
           '"\\u00e9"', '"\\x41"', '"\\q"', '"\\N{LATIN SMALL LETTER A}"', '"é☃😀"',
           '"\\U0010FFFF"', '"\\uD800"']
INTS = ["0", "1", "2", "3", "17", "64", "255", "0x40", "0xFFFFFFFF", "007", str(2**62), str(2**63),
        str(2**64), "9" * 40]
# Literals too long to draw often, drawn one time in 50 instead of a regular value.
HUGE = {"STRING": ['"' + "s" * 5000 + '"', '"' + "\\" * 2000 + '"'], "INT": ["9" * 4301, "1" + "0" * 20000],
        "FLOAT": ["1" * 400 + ".5", "0." + "0" * 400 + "1e-5"], "NAME": ["n" * 10000],
        "SIZE": ["9" * 400 + "GiB"]}
FLOATS = ["0.5", "1.0", ".5", "1.", "1e-3", "1E5", "1e308", "1e309", "1e-400", "3.14159", "0.0", "2.5e+10"]
SIZES = ["16MiB", "1KiB", "0B", "1.5GiB", "4KB", "999999999999TiB", "1TB", "0.5B"]
SPACES = [" "] * 12 + ["\t", "  ", " \\\n", "\f"]
NEWLINES = ["\n"] * 6 + ["\r\n", "\n\n", " # a comment\n"]

# What mutations insert: tokens of the language, characters no token starts with, brackets, control
# characters, and Unicode that looks like ASCII or reorders text.
FRAGMENTS = ["(", ")", "[", "]", "{", "}", ",", "=", "==", "->", "...", "::", "?", "|", ";", "\n", '"', "\\",
             "#", "@", "$", "%", "`", "'", "\x00", "\x7f", "\u202e", "\ufeff", "é", "😀", "\u00a0",
             "ｆｏｌｄ",
             "-", "--", "~=", "0x", "1e", "9" * 30, " not ", " and ", " or ", " tol ", " where ", " with ",
             " to ", "fold constants", "cleanup", "set node", "import", "rule r {", "match {", "rewrite {",
             "replace", "apply", "verify off", "model", "save", "(((", ")))", "[[[", "]]]", "\r", "\t"]


class GrammarGenerator:
    """Random derivations of the language's grammar, bounded in depth."""

    def __init__(self, max_depth: int = 12):
        lark = _parser()
        self.rules: dict[str, list[list]] = defaultdict(list)
        for rule in lark.rules:
            self.rules[rule.origin.name].append(rule.expansion)
        self.literals = {t.name: t.pattern.value for t in lark.terminals
                         if type(t.pattern).__name__ == "PatternStr"}
        self.regex_terminals = {t.name for t in lark.terminals} - set(self.literals)
        self.max_depth = max_depth
        self.height = self._heights()
        # the expansions that end a derivation soonest, for when it is deep enough already
        self.shortest = {}
        for name, expansions in self.rules.items():
            low = min(self._expansion_height(e, self.height) for e in expansions)
            self.shortest[name] = [e for e in expansions if self._expansion_height(e, self.height) == low]

    def _heights(self) -> dict[str, int]:
        """Each nonterminal's smallest derivation height, so that deep derivations can be cut short."""
        height: dict[str, int] = {}
        changed = True
        while changed:
            changed = False
            for name, expansions in self.rules.items():
                best = min((self._expansion_height(e, height) for e in expansions), default=None)
                if best is not None and best < height.get(name, 1 << 30):
                    height[name], changed = best, True
        return height

    def _expansion_height(self, expansion, height) -> int:
        inner = [height.get(s.name, 1 << 30) if isinstance(s, NonTerminal) else 0 for s in expansion]
        return 1 + max(inner, default=0)

    def script(self, rng: random.Random, statements: int | None = None) -> str:
        """A whole script: `start` derived, or `statements` statements joined by newlines."""
        if statements is None:
            return self._join(self._derive("start", rng, 0), rng)
        parts = [self._join(self._derive("statement", rng, 0), rng) for _ in range(statements)]
        return "".join(p + rng.choice(NEWLINES) for p in parts)

    def _derive(self, symbol: str, rng: random.Random, depth: int) -> list[str]:
        expansions = self.rules[symbol] if depth < self.max_depth else self.shortest[symbol]
        tokens: list[str] = []
        for sym in rng.choice(expansions):
            if isinstance(sym, Terminal):
                tokens.append(self.terminal(sym.name, rng))
            else:
                tokens.extend(self._derive(sym.name, rng, depth + 1))
        return tokens

    def terminal(self, name: str, rng: random.Random) -> str:
        if name in self.literals:
            return self.literals[name]
        if name == "_NL":
            return "\n"
        pools = {"STRING": STRINGS, "INT": INTS, "FLOAT": FLOATS, "SIZE": SIZES,
                 "COMPARE": ["==", "!=", "<=", ">=", "<", ">"]}
        if name in HUGE and rng.random() < 0.02:
            return rng.choice(HUGE[name])
        if name in pools:
            return rng.choice(pools[name])
        if name == "NAME":
            pool = rng.choice((OPS, ATTRS, OPTIONS, MODEL_NAMES, WORDS))
            return rng.choice(pool) if rng.random() < 0.9 else _random_name(rng)
        return _random_name(rng)  # a terminal added to the grammar after this was written

    @staticmethod
    def _join(tokens: list[str], rng: random.Random) -> str:
        out = []
        for tok in tokens:
            out.append(tok)
            out.append(rng.choice(NEWLINES) if tok == "\n" else rng.choice(SPACES))
        return "".join(out).replace("\n" + " ", "\n")


def _random_name(rng: random.Random) -> str:
    first = rng.choice("abcxyzABC_")
    return first + "".join(rng.choice("abc019_Z") for _ in range(rng.randrange(0, 12)))


def mutate(text: str, rng: random.Random, count: int) -> str:
    """`count` random edits: delete, duplicate or move a span, insert a fragment, swap lines, cut short."""
    for _ in range(count):
        n = len(text)
        i, j = sorted((rng.randrange(n + 1), rng.randrange(n + 1)))
        if j - i > 40:
            j = i + rng.randrange(40)
        kind = rng.randrange(7)
        if kind == 0:
            text = text[:i] + text[j:]
        elif kind == 1:
            text = text[:j] + text[i:j] * rng.randrange(1, 4) + text[j:]
        elif kind == 2:
            text = text[:i] + rng.choice(FRAGMENTS) + text[i:]
        elif kind == 3:
            lines = text.split("\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        elif kind == 4:
            text = text[:i]
        elif kind == 5 and n:
            k = rng.randrange(n)
            text = text[:k] + chr(rng.choice((0x20, 0x22, 0x28, 0x29, 0x2C, 0x3D, 0x5B, 0x5D, 0x0A, 0xE9,
                                              rng.randrange(0x20, 0x7F)))) + text[k + 1:]
        else:
            piece = text[i:j]
            text = text[:i] + text[j:]
            k = rng.randrange(len(text) + 1)
            text = text[:k] + piece + text[k:]
    return text
