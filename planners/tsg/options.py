"""Command-line options as programs parse them: combined short flags, attached values, ``--``.

``sed -Ei``, ``curl -sXPOST`` and ``wget -qO /tmp/out`` hide a write in a cluster of short
flags; ``find . -name -delete`` has ``-delete`` as a *value*. Knowing which options take a
value (``OptionSpec``) is enough to read an argument list the way the program will.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OptionSpec", "Parsed", "parse_options", "spec", "words"]


@dataclass(frozen=True)
class OptionSpec:
    """How one program reads its options.

    ``values``: options that take a value (``-o`` → ``-o FILE``/``-oFILE``, ``--output`` →
    ``--output FILE``/``--output=FILE``). ``optional``: options whose value can only be
    attached (``sed -i.bak``). ``single_dash_long``: ``-name`` is one option (find, openssl,
    ip). ``permute``: options may follow operands (GNU); else the first operand ends them.
    """

    values: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    single_dash_long: bool = False
    permute: bool = True


def words(text: str) -> frozenset[str]:
    """``words("-o --output")`` → {"-o", "--output"}: tables stay readable as one string."""
    return frozenset(text.split())


def spec(
    values: str = "", optional: str = "", *, single_dash_long: bool = False, permute: bool = True
) -> OptionSpec:
    """``spec("-o --output -k", "-i")``: a compact way to write an ``OptionSpec`` in a table."""
    return OptionSpec(frozenset(values.split()), frozenset(optional.split()), single_dash_long, permute)


@dataclass
class Parsed:
    """Options in order as (name, value or None), and the operands."""

    options: list[tuple[str, str | None]]
    operands: list[str]

    def has(self, *names: str) -> bool:
        return any(name in names for name, _ in self.options)

    def values(self, *names: str) -> list[str | None]:
        return [value for name, value in self.options if name in names]


def parse_options(args: list[str], options: OptionSpec) -> Parsed:
    """Read ``args`` as getopt/pflag would (``--`` ends options; ``-`` is an operand)."""
    found: list[tuple[str, str | None]] = []
    operands: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            operands.extend(args[index:])
            break
        if arg == "-" or not arg.startswith("-"):
            operands.append(arg)
            if not options.permute:
                operands.extend(args[index:])
                break
            continue
        if arg.startswith("--") or options.single_dash_long:
            name, equals, value = arg.partition("=")
            if equals:
                found.append((name, value))
            elif name in options.values and index < len(args):
                found.append((name, args[index]))
                index += 1
            else:
                found.append((name, None))
            continue
        # A cluster of short options: -sXPOST is -s, then -X with the value POST.
        for position in range(1, len(arg)):
            name = "-" + arg[position]
            rest = arg[position + 1 :]
            if name in options.values:
                if rest:
                    found.append((name, rest))
                elif index < len(args):
                    found.append((name, args[index]))
                    index += 1
                else:
                    found.append((name, None))
                break
            if name in options.optional:
                found.append((name, rest or None))
                break
            found.append((name, None))
    return Parsed(found, operands)
