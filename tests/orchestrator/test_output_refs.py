"""References to step outputs checked at validate time against the tools' return types."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from orchestrator import GraphValidationError, Task, TaskGraph
from planners import load_workflow
from tools import ToolRegistry, tool
from tools.builtin import builtin_registry


class Address(BaseModel):
    city: str
    street_name: str = Field(serialization_alias="street")


class Person(BaseModel):
    name: str
    home: Address | None = None
    friends: list[Address] = []


@tool
async def person() -> Person:
    return Person(name="x")


@tool
async def anything():  # type: ignore[no-untyped-def]  # no declared return type
    return {}


@tool
async def mapping() -> dict[str, int]:
    return {}


@tool
async def echo(text: str) -> str:
    return text


TOOLS = ToolRegistry([person, anything, mapping, echo])


def problems(expression: str, *, for_each: bool = False, tool_name: str = "person") -> list[str]:
    source = Task(id="a", tool=tool_name, for_each="${{ [1, 2] }}" if for_each else None)
    user = Task(id="b", tool="echo", args={"text": expression})
    return TaskGraph([source, user]).problems(TOOLS)


@pytest.mark.parametrize(
    "expression",
    [
        "${{ steps.a.output.name }}",
        "${{ steps.a.output.home.city }}",  # through Optional (anyOf with null) and $ref
        "${{ steps.a.output.home.street }}",  # the serialized name is what expressions see
        "${{ steps.a.output.friends[0].city }}",  # list items
        "${{ steps.a.output.name.strip() }}",  # a method of the string
        "${{ steps.a.output.nickname | default('') }}",  # the author expects it may be missing
        "${{ steps.a.output.nickname is defined }}",
        "${{ steps.a.output.get('nickname') }}",
        "${{ steps.a.output[inputs.key].anything }}",  # computed key: unknowable
        "${{ steps.a.status }} ${{ steps.a.error }} ${{ steps.a }}",
    ],
)
def test_known_fields_pass(expression: str) -> None:
    assert problems(expression) == []


@pytest.mark.parametrize("tool_name", ["anything", "mapping"])
def test_undeclared_or_open_outputs_are_not_checked(tool_name: str) -> None:
    assert problems("${{ steps.a.output.whatever.deeper }}", tool_name=tool_name) == []


def test_step_field_typo_suggests_output() -> None:
    assert problems("${{ steps.a.outpt.name }}") == [
        "task 'b': args.text: steps.a.outpt: a step has only output, status and error "
        "(did you mean 'steps.a.output'?)"
    ]


def test_output_field_typo_names_the_type_and_suggests() -> None:
    [problem] = problems("${{ steps.a.output.nmae }}")
    assert problem == (
        "task 'b': args.text: steps.a.output.nmae: the output of tool 'person' (Person) "
        "has no field 'nmae' (did you mean 'name'?)"
    )


def test_nested_field_typo_through_optional_and_list() -> None:
    [nested] = problems("${{ steps.a.output.home.cty }}")
    assert "steps.a.output.home.cty: steps.a.output.home (Address) has no field 'cty'" in nested
    assert "did you mean 'city'?" in nested
    [in_list] = problems("${{ steps.a.output.friends[0].street_name }}")
    assert "no field 'street_name' (did you mean 'street'?)" in in_list


def test_fanned_out_output_is_a_list_of_outputs() -> None:
    assert problems("${{ steps.a.output[0].name }}", for_each=True) == []
    [problem] = problems("${{ steps.a.output[1].nam }}", for_each=True)
    assert "has no field 'nam' (did you mean 'name'?)" in problem


def test_without_a_close_match_lists_the_fields() -> None:
    [problem] = problems("${{ steps.a.output.zzz }}")
    assert problem.endswith("(its fields: name, home, friends)")


def test_conditions_are_checked_and_validate_raises() -> None:
    graph = TaskGraph(
        [
            Task(id="a", tool="person"),
            Task(id="b", tool="echo", args={"text": "x"}, when="steps.a.output.naem"),
        ]
    )
    with pytest.raises(GraphValidationError, match=r"when: steps\.a\.output\.naem: .*did you mean 'name'"):
        graph.validate(TOOLS)
    assert graph.problems() == []  # without tools nothing is known about outputs


def test_workflow_names_file_line_and_step(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: disk
            steps:
              - id: disk
                tool: shell
                args:
                  argv: [df, -h]
              - id: show
                tool: shell
                args:
                  argv: [echo, "${{ steps.disk.outpt.stdout }}"]
                  stdin: "${{ steps.disk.output.stdot }}"
            """
        )
    )
    found = load_workflow(path).problems(builtin_registry())
    assert [(p.file, p.line, p.step) for p in found] == [(str(path), 10, "show"), (str(path), 11, "show")]
    assert "did you mean 'steps.disk.output'?" in found[0].message
    assert found[1].message == (
        "args.stdin: steps.disk.output.stdot: the output of tool 'shell' (ShellResult) "
        "has no field 'stdot' (did you mean 'stdout'?)"
    )
