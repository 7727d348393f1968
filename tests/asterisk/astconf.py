"""A small reader of Asterisk configuration files, and the coherence checks of the line.

What it reads, as Asterisk does (main/config.c, pbx/pbx_config.c):

- sections `[name]`, templates `[name](!)`, sections built on templates `[name](t1,t2)` and
  `[name](!,t1)` (the templates' entries first, then the section's own), `[name](+)`;
- `key = value` and `key => value`; comments from an unescaped `;` to the end of the line,
  and `;-- ... --;` blocks; `#include file` / `#tryinclude file` (resolved by the caller);
- in a dialplan: `exten => EXT,PRIO[(label)],App(args)`, `same => PRIO[(label)],App(args)`,
  `include => context`.

Every check returns a list of problems (one sentence each, naming the file and line); an empty
list means the configuration passed. The tests run each check on the real files, and on small
broken texts to prove the check can fail.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# -- reading -------------------------------------------------------------------------------


@dataclass
class Entry:
    key: str
    value: str
    arrow: bool  # `=>` rather than `=`
    where: str


@dataclass
class Section:
    name: str
    is_template: bool
    templates: list[str]
    entries: list[Entry]
    where: str

    def values(self, key: str) -> list[str]:
        return [entry.value for entry in self.entries if entry.key == key]

    def get(self, key: str, default: str | None = None) -> str | None:
        found = self.values(key)
        return found[-1] if found else default


@dataclass
class Config:
    """The sections of one file and of everything it `#include`s, in order."""

    sections: list[Section] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def named(self, name: str) -> list[Section]:
        return [section for section in self.sections if section.name == name]

    def of_type(self, kind: str) -> list[Section]:
        """The sections (templates left out) whose `type` is `kind`."""
        return [s for s in self.sections if not s.is_template and s.get("type") == kind]

    def first(self, name: str) -> Section | None:
        found = self.named(name)
        return found[0] if found else None


Resolver = Callable[[str], "tuple[str, str] | None"]
"""An `#include` target → (its name for messages, its text), or None when there is no such file."""

_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?\s*$")
_INCLUDE = re.compile(r'^#(try)?include\s+["<]?([^">]+)[">]?\s*$')


def strip_comment(line: str, in_block: bool) -> tuple[str, bool]:
    """The code part of a line (`\\;` kept as `;`), and whether a `;--` block is still open."""
    out = []
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("--;", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 3, False
            continue
        char = line[i]
        if char == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if char == ";":
            if line.startswith(";--", i):
                in_block = True
                i += 3
                continue
            break
        out.append(char)
        i += 1
    return "".join(out), in_block


def parse(text: str, name: str, resolve: Resolver | None = None, config: Config | None = None) -> Config:
    """Read `text` (called `name` in messages); `#include`s go through `resolve`."""
    config = config if config is not None else Config()
    config.files.append(name)
    current: Section | None = None
    in_block = False
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{name}:{number}"
        line, in_block = strip_comment(raw, in_block)
        line = line.strip()
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include:
            target = include.group(2).strip()
            found = resolve(target) if resolve else None
            if found is None:
                if not include.group(1):
                    config.problems.append(f"{where}: #include {target}: no such file")
                continue
            parse(found[1], found[0], resolve, config)
            continue
        header = _SECTION.match(line)
        if header:
            options = [o.strip() for o in (header.group(2) or "").split(",") if o.strip()]
            section_name = header.group(1).strip()
            if "+" in options:
                existing = config.named(section_name)
                if not existing:
                    config.problems.append(f"{where}: [{section_name}](+) adds to a section never defined")
                    existing = [Section(section_name, False, [], [], where)]
                    config.sections.append(existing[0])
                current = existing[-1]
                continue
            templates = [o for o in options if o != "!"]
            entries: list[Entry] = []
            for template in templates:
                found_templates = config.named(template)
                if not found_templates:
                    config.problems.append(f"{where}: [{section_name}] uses template "
                                           f"{template!r}, not defined before it")
                    continue
                entries.extend(Entry(e.key, e.value, e.arrow, e.where) for e in found_templates[-1].entries)
            current = Section(section_name, "!" in options, templates, entries, where)
            config.sections.append(current)
            continue
        key, sep, value = line.partition("=")
        if not sep:
            config.problems.append(f"{where}: not a section, an entry or an #include: {line!r}")
            continue
        arrow = value.startswith(">")
        value = value[1:] if arrow else value
        if current is None:
            config.problems.append(f"{where}: {key.strip()!r} comes before any [section]")
            continue
        current.entries.append(Entry(key.strip().lower(), value.strip(), arrow, where))
    return config


def folder_resolver(folder: Path, extra: Mapping[str, Path] | None = None) -> Resolver:
    """`#include x` as Asterisk resolves it relative to /etc/asterisk, mapped onto `folder`;
    `extra` maps a prefix (e.g. `dialplans/`) onto another folder."""

    def resolve(target: str) -> tuple[str, str] | None:
        for prefix, other in (extra or {}).items():
            if target.startswith(prefix):
                path = other / target[len(prefix):]
                break
        else:
            path = folder / target
        if not path.is_file():
            return None
        return path.name if path.parent == folder else f"{path.parent.name}/{path.name}", path.read_text()

    return resolve


def text_resolver(files: Mapping[str, str]) -> Resolver:
    """`#include` over texts in memory, for the tests' small configurations."""
    return lambda target: (target, files[target]) if target in files else None


# -- the dialplan --------------------------------------------------------------------------


@dataclass
class Step:
    """One priority of an extension: `App(args)`."""

    exten: str
    priority: str
    label: str | None
    app: str
    args: list[str]
    where: str


@dataclass
class Context:
    name: str
    steps: list[Step] = field(default_factory=list)
    includes: list[tuple[str, str]] = field(default_factory=list)  # (context, where)
    where: str = ""

    @property
    def extensions(self) -> list[str]:
        return list(dict.fromkeys(step.exten for step in self.steps))

    def matching(self, exten: str) -> list[str]:
        return [e for e in self.extensions if extension_matches(e, exten)]

    def has_priority(self, exten: str, priority: str) -> bool:
        steps = [s for s in self.steps if extension_matches(s.exten, exten)]
        if priority.isdigit():
            return any(s.priority == priority for s in steps)
        return any(s.label == priority for s in steps)


_PRIORITY = re.compile(r"^(\d+|n|hint|s)(?:\(([^)]*)\))?$")
SPECIAL_SECTIONS = {"general", "globals"}


def split_args(text: str, sep: str = ",") -> list[str]:
    """Split application arguments at `sep`, not inside (), {}, [] or quotes."""
    parts, depth, quote, current = [], 0, False, []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == '"':
            quote = not quote
        elif not quote and char in "({[":
            depth += 1
        elif not quote and char in ")}]":
            depth -= 1
        if char == sep and depth == 0 and not quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def parse_app(text: str) -> tuple[str, list[str]]:
    """`Queue(keybox-agents,,,,300)` → ("Queue", ["keybox-agents", "", "", "", "300"])."""
    text = text.strip()
    open_at = text.find("(")
    if open_at < 0:
        return text, []
    name = text[:open_at].strip()
    inner = text[open_at + 1:]
    inner = inner.removesuffix(")")
    return name, [arg.strip() for arg in split_args(inner)] if inner.strip() else []


def dialplan(config: Config) -> dict[str, Context]:
    """The contexts of an extensions.conf `Config`, `[general]` and `[globals]` left out."""
    contexts: dict[str, Context] = {}
    for section in config.sections:
        if section.name in SPECIAL_SECTIONS or section.is_template:
            continue
        context = contexts.setdefault(section.name, Context(section.name, where=section.where))
        last_exten: str | None = None
        last_number = 0
        for entry in section.entries:
            if entry.key == "include":
                context.includes.append((entry.value, entry.where))
                continue
            if entry.key not in ("exten", "same"):
                continue
            if entry.key == "exten":
                exten, _, rest = entry.value.partition(",")
                exten = exten.strip()
                last_exten, last_number = exten, 0
            else:
                if last_exten is None:
                    raise ValueError(f"{entry.where}: `same =>` before any `exten =>`")
                exten, rest = last_exten, entry.value
            priority_text, _, app_text = rest.partition(",")
            match = _PRIORITY.match(priority_text.strip())
            if not match:
                raise ValueError(f"{entry.where}: priority {priority_text.strip()!r} is not a number, n or hint")
            if match.group(1) == "n":
                last_number += 1
            elif match.group(1).isdigit():
                last_number = int(match.group(1))
            app, args = parse_app(app_text)
            context.steps.append(Step(exten, str(last_number), match.group(2), app, args, entry.where))
    return contexts


def extension_matches(pattern: str, exten: str) -> bool:
    """Whether dialplan extension `pattern` (literal, or `_` pattern) takes `exten`."""
    if not pattern.startswith("_"):
        return pattern == exten
    regex = ""
    chars = pattern[1:]
    i = 0
    while i < len(chars):
        char = chars[i]
        if char == "X":
            regex += "[0-9]"
        elif char == "Z":
            regex += "[1-9]"
        elif char == "N":
            regex += "[2-9]"
        elif char == ".":
            regex += ".+"
        elif char == "!":
            regex += ".*"
        elif char == "[":
            end = chars.index("]", i)
            regex += "[" + chars[i + 1:end] + "]"
            i = end
        else:
            regex += re.escape(char)
        i += 1
    return re.fullmatch(regex, exten) is not None


# -- the checks ----------------------------------------------------------------------------

AGI_APPS = {"agi", "eagi"}
PLAY_APPS = {"playback": 0, "background": 0, "controlplayback": 0, "read": 1}
CLASSIC_AGI_PROGRAM = "ivr-agi"
STASIS_APP = "keybox"


def _literal(text: str) -> bool:
    return "${" not in text and "$[" not in text


def agi_route(target: str) -> str | None:
    """The route an AGI target names: `agi://host:port/ROUTE?query` and `hagi://host/ROUTE`
    give ROUTE; None when the target is not a FastAGI URL."""
    match = re.match(r"^h?agi://[^/]*(/[^?]*)?(\?.*)?$", target)
    if not match:
        return None
    return (match.group(1) or "").strip("/")


def check_routes(contexts: Mapping[str, Context], routes: Iterable[str]) -> list[str]:
    """Every AGI target and Stasis route names a route the service serves."""
    known = set(routes)
    found = []
    for context in contexts.values():
        for step in context.steps:
            app = step.app.lower()
            if app in AGI_APPS:
                target = step.args[0] if step.args else ""
                route = agi_route(target)
                if route is None:
                    if target != CLASSIC_AGI_PROGRAM:
                        found.append(f"{step.where}: AGI program {target!r} is "
                                     f"not {CLASSIC_AGI_PROGRAM} nor a FastAGI URL")
                        continue
                    route = step.args[1] if len(step.args) > 1 else ""
                elif target.startswith("hagi://") and ":" in target[7:].split("/")[0]:
                    found.append(f"{step.where}: {target}: a port in a hagi:// URL turns its SRV lookup off")
                if not route:
                    found.append(f"{step.where}: {step.app}({','.join(step.args)}) names no route")
                elif not _literal(route):
                    found.append(f"{step.where}: route {route!r} is computed; the check needs it written out")
                elif route not in known:
                    found.append(f"{step.where}: route {route!r} is not one the "
                                 f"service serves ({', '.join(sorted(known))})")
            elif app == "stasis":
                name = step.args[0] if step.args else ""
                route = step.args[1] if len(step.args) > 1 else ""
                if name != STASIS_APP:
                    found.append(f"{step.where}: Stasis application {name!r} is not {STASIS_APP!r}")
                if route not in known:
                    found.append(f"{step.where}: Stasis route {route!r} is not one "
                                 f"the service serves ({', '.join(sorted(known))})")
    return found


def check_sounds(contexts: Mapping[str, Context], prompt_ids: Iterable[str]) -> list[str]:
    """Every sound the dialplan plays is `keybox/<prompt id>` (built in every language)."""
    known = set(prompt_ids)
    found = []
    for context in contexts.values():
        for step in context.steps:
            index = PLAY_APPS.get(step.app.lower())
            if index is None:
                continue
            files = step.args[index] if len(step.args) > index else ""
            for sound in filter(None, (s.strip() for s in files.split("&"))):
                prefix, _, prompt = sound.partition("/")
                if prefix != "keybox" or prompt not in known:
                    found.append(f"{step.where}: {step.app} plays {sound!r}, which is not keybox/<prompt id>")
    return found


def _goto_targets(step: Step) -> list[str]:
    app = step.app.lower()
    if app in ("goto", "gosub"):
        return [",".join(step.args)]
    if app in ("gotoif", "gosubif"):
        joined = ",".join(step.args)
        _, _, branches = joined.partition("?")
        return [b for b in split_args(branches, ":") if b.strip()]
    return []


def check_contexts(
    contexts: Mapping[str, Context], queues: Config, *, entry_points: Mapping[str, str] = {},
) -> list[str]:
    """Every context a dialplan names (`include =>`, Goto/GotoIf/Gosub targets,
    `Dial(Local/x@ctx)`) exists with that extension and priority; every `Queue` is in
    queues.conf; each of `entry_points` (context → who enters it) exists."""
    found = []
    queue_names = {s.name for s in queues.sections if s.name != "general" and not s.is_template}

    def check_target(where: str, context_name: str, exten: str, priority: str) -> None:
        context = contexts.get(context_name)
        if context is None:
            found.append(f"{where}: context {context_name!r} is not defined")
        elif not _literal(exten) or not _literal(priority):
            return
        elif not context.matching(exten):
            found.append(f"{where}: context {context_name!r} has no extension {exten!r}")
        elif not context.has_priority(exten, priority):
            found.append(f"{where}: extension {exten!r} of {context_name!r} has no priority {priority!r}")

    for context in contexts.values():
        for included, where in context.includes:
            if included not in contexts:
                found.append(f"{where}: include => {included}: context not defined")
        for step in context.steps:
            for target in _goto_targets(step):
                spec = target.split("(")[0] if step.app.lower().startswith("gosub") else target
                parts = [p.strip() for p in split_args(spec)]
                if len(parts) == 1:
                    check_target(step.where, context.name, step.exten, parts[0])
                elif len(parts) == 2:
                    check_target(step.where, context.name, parts[0], parts[1])
                elif len(parts) == 3:
                    if _literal(parts[0]):
                        check_target(step.where, parts[0], parts[1], parts[2])
                else:
                    found.append(f"{step.where}: {step.app} target {target!r} is not [[context,]exten,]priority")
            app = step.app.lower()
            if app == "dial":
                for device in (step.args[0] if step.args else "").split("&"):
                    local = re.match(r"^Local/([^@]+)@([^/]+)", device.strip())
                    if local and _literal(local.group(2)):
                        check_target(step.where, local.group(2), local.group(1), "1")
            if app == "queue":
                name = step.args[0] if step.args else ""
                if _literal(name) and name not in queue_names:
                    found.append(f"{step.where}: Queue({name}): no such queue in queues.conf")
    for name, who in entry_points.items():
        if name not in contexts:
            found.append(f"context {name!r} ({who}) is not defined in the dialplan")
    return found


def check_application(text: str, queues: Config, what: str) -> list[str]:
    """A dialplan application written elsewhere (IVR_OPERATOR): a Queue names a real queue."""
    app, args = parse_app(text)
    names = {s.name for s in queues.sections if s.name != "general"}
    if app.lower() == "queue" and (not args or args[0] not in names):
        return [f"{what} is {text!r}: no such queue in queues.conf"]
    return []


AGENT_VIEW_NAME = ("IVR_KEY_NUMBER", "IVR_LAST_STEP")
AGENT_CALL_HEADER = "X-Keybox-Call"


def _bounded_filter(value: str, variable: str) -> bool:
    """`value` holds `${FILTER(allowed,${variable}):0:N}`: only some characters, at most N."""
    return re.search(r"\$\{FILTER\([^,]+,\$\{" + variable + r"\}\):0:\d+\}", value) is not None


def check_agent_view(contexts: Mapping[str, Context], context_name: str) -> list[str]:
    """What an agent's phone gets on a transfer: before `s` hands the caller over (Exec, or a
    Goto to the queue), the caller's name is set from the key number and the step, each
    filtered and bounded, and IVR_CALL_ID is made inheritable (`__IVR_CALL_ID`); every Queue
    of the context has a b() pre-dial handler that adds the call id as a SIP header."""
    context = contexts.get(context_name)
    if context is None:
        return [f"context {context_name!r} (the transfer) is not defined"]
    found = []
    steps = [s for s in context.steps if s.exten == "s"]
    handover = next((i for i, s in enumerate(steps) if s.app.lower() == "exec"
                     or any(t.split(",")[0].strip() == "agents" for t in _goto_targets(s))), len(steps))
    before = [",".join(s.args) for s in steps[:handover] if s.app.lower() == "set"]
    names = [v.partition("=")[2] for v in before if v.replace(" ", "").lower().startswith("callerid(name)=")]
    if not names:
        found.append(f"{context.where}: [{context_name}] s sets no CALLERID(name) "
                     "before the hand-over: the agent sees a bare number")
    for variable in AGENT_VIEW_NAME:
        if names and not any(_bounded_filter(name, variable) for name in names):
            found.append(f"{context.where}: [{context_name}] the caller's name does not "
                         f"show ${{{variable}}} filtered and bounded (FILTER(...):0:N)")
    if not any(v.startswith("__IVR_CALL_ID=") and "${IVR_CALL_ID}" in v for v in before):
        found.append(f"{context.where}: [{context_name}] s does not pass IVR_CALL_ID "
                     "to the agent's leg (Set(__IVR_CALL_ID=...) before the hand-over)")
    for step in (s for s in context.steps if s.app.lower() == "queue"):
        options = step.args[1] if len(step.args) > 1 else ""
        handler = re.search(r"b\(([^)]*)\)", options)
        parts = [p.strip() for p in handler.group(1).split("^")] if handler else []
        if handler is None or len(parts) != 3:
            found.append(f"{step.where}: Queue({','.join(step.args)}) has no b(context^exten^priority) "
                         f"pre-dial handler: the agent gets no {AGENT_CALL_HEADER}")
            continue
        target = contexts.get(parts[0])
        body = [s for s in target.steps if s.exten == parts[1]] if target else []
        text = " ".join(f"{s.app}({','.join(s.args)})" for s in body)
        if f"PJSIP_HEADER(add,{AGENT_CALL_HEADER})=${{IVR_CALL_ID}}" not in text.replace(" ", ""):
            found.append(f"{step.where}: the pre-dial handler {handler.group(0)} "
                         f"does not add {AGENT_CALL_HEADER} from ${{IVR_CALL_ID}}")
        elif not body or body[-1].app.lower() != "return":
            found.append(f"{step.where}: the pre-dial handler {handler.group(0)} does not end with Return()")
    return found


def check_pjsip(pjsip: Config, contexts: Mapping[str, Context] | None = None) -> list[str]:
    """Endpoints point at existing auths, AORs, transports and dialplan contexts; identify and
    registration sections at existing endpoints; every template used is defined before use."""
    found = list(pjsip.problems)
    kinds: dict[str, set[str]] = {}
    for section in pjsip.sections:
        if not section.is_template and section.get("type"):
            kinds.setdefault(section.get("type") or "", set()).add(section.name)

    def refs(section: Section, key: str, kind: str) -> None:
        for value in section.values(key):
            for name in filter(None, (v.strip() for v in value.split(","))):
                if name not in kinds.get(kind, set()):
                    found.append(f"{section.where}: [{section.name}] {key} = {name}: no {kind} section {name!r}")

    for section in pjsip.sections:
        if section.is_template:
            continue
        kind = section.get("type")
        if kind is None:
            found.append(f"{section.where}: [{section.name}] has no type")
        if kind == "endpoint":
            refs(section, "auth", "auth")
            refs(section, "outbound_auth", "auth")
            refs(section, "aors", "aor")
            refs(section, "transport", "transport")
            context = section.get("context")
            if contexts is not None and context is not None and context not in contexts:
                found.append(f"{section.where}: endpoint {section.name} enters context {context!r}, not defined")
            if context is None:
                found.append(f"{section.where}: endpoint {section.name} has no context (it would enter `default`)")
        elif kind in ("identify", "registration"):
            refs(section, "endpoint", "endpoint")
            refs(section, "outbound_auth", "auth")
    return found


def check_queue_members(queues: Config, pjsip: Config) -> list[str]:
    """Every queue member is a PJSIP endpoint of pjsip.conf."""
    endpoints = {s.name for s in pjsip.of_type("endpoint")}
    found = list(queues.problems)
    for section in queues.sections:
        for entry in section.entries:
            if entry.key != "member":
                continue
            interface = entry.value.split(",")[0].strip()
            tech, _, name = interface.partition("/")
            if tech != "PJSIP" or name not in endpoints:
                found.append(f"{entry.where}: queue {section.name} member "
                             f"{interface}: not a PJSIP endpoint of pjsip.conf")
    return found


# -- outbound calls -------------------------------------------------------------------------


def _closing_brace(text: str, start: int) -> int:
    """The index just past the `}` that closes the `${` at `start` (braces counted as
    main/pbx_variables.c counts them); len(text) + 1 when it is never closed."""
    depth, i = 0, start
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text) + 1


def _uri_encode(text: str) -> str:
    """URIENCODE: letters, digits and `-_.!~*'()` kept, every other byte %XX (main/utils.c)."""
    keep = "-_.!~*'()"
    return "".join(c if (c.isascii() and c.isalnum()) or c in keep else "".join(f"%{b:02X}" for b in c.encode())
                   for c in text)


def filter_allowed(allowed: str) -> set[str]:
    """The characters FILTER(allowed,...) keeps: `a-z` is a range, a `-` that follows no
    character (first, or right after a range) is itself (funcs/func_strings.c)."""
    chars: set[str] = set()
    i = 0
    while i < len(allowed):
        first = allowed[i]
        if allowed[i + 1:i + 2] == "-" and i + 2 < len(allowed):
            chars.update(chr(c) for c in range(ord(first), ord(allowed[i + 2]) + 1))
            i += 3
        else:
            chars.add(first)
            i += 1
    return chars


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """`text` with its `${...}` evaluated as Asterisk does when it runs a step, for what the
    line's outbound contexts use: `${NAME}`, `${NAME:offset:length}`, `${FILTER(allowed,x)}`,
    `${URIENCODE(x)}` (nested ones first). An unset variable is empty; another function is
    a ValueError."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if not text.startswith("${", i):
            out.append(text[i])
            i += 1
            continue
        end = _closing_brace(text, i + 1)
        if end > len(text):
            raise ValueError(f"unclosed ${{ in {text!r}")
        inner = substitute(text[i + 2:end - 1], variables)
        name, offset, length = inner, 0, None
        parens = 0
        for at, char in enumerate(inner):  # `:offset:length` outside parentheses only
            parens += (char == "(") - (char == ")")
            if char == ":" and parens == 0:
                name, numbers = inner[:at], inner[at + 1:].split(":")
                offset = int(numbers[0] or 0)
                length = int(numbers[1]) if len(numbers) > 1 and numbers[1] else None
                break
        function = re.fullmatch(r"([A-Z_]+)\((.*)\)", name, re.DOTALL)
        if function is None:
            value = variables.get(name, "")
        elif function.group(1) == "FILTER":
            allowed, _, string = function.group(2).partition(",")
            keep = filter_allowed(allowed)
            value = "".join(c for c in string if c in keep)
        elif function.group(1) == "URIENCODE":
            value = _uri_encode(function.group(2))
        else:
            raise ValueError(f"{function.group(1)}() is not one the check evaluates")
        value = value[offset:] if length is None else value[offset:offset + length]
        out.append(value)
        i = end
    return "".join(out)


def _agi_query(target: str) -> dict[str, str]:
    """The query arguments of a FastAGI URL, unevaluated: `a=${X}&b=1` → {"a": "${X}", "b": "1"}."""
    _, _, query = target.partition("?")
    pairs = [part.partition("=") for part in split_args(query, "&") if part]
    return {key: value for key, _, value in pairs}


def check_announce(
    contexts: Mapping[str, Context], context_name: str, route: str, query: Mapping[str, str],
) -> list[str]:
    """The context the service originates notices into starts at s,1 and runs the FastAGI
    `route` with each query argument of `query` (argument → channel variable) URI-encoded
    from its variable: for a value with `&`, `,` or `?`, what reaches the service is the value."""
    context = contexts.get(context_name)
    if context is None:
        return [f"context {context_name!r} (the service's notices) is not defined"]
    found = []
    if not context.has_priority("s", "1"):
        found.append(f"{context.where}: [{context_name}] has no s,1, where the Originate lands")
    agis = [s for s in context.steps if s.exten == "s" and s.app.lower() in AGI_APPS
            and s.args and agi_route(s.args[0]) == route]
    if not agis:
        return [*found, f"{context.where}: [{context_name}] s runs no AGI of the route {route!r}"]
    for step in agis:
        written = _agi_query(step.args[0])
        for argument, variable in query.items():
            sample = f"{variable.lower()} 1&x=2,3?"
            value = written.get(argument)
            if value is None:
                found.append(f"{step.where}: the {route} AGI passes no {argument!r} (from ${{{variable}}})")
            elif substitute(value, {variable: sample}) != _uri_encode(sample):
                found.append(f"{step.where}: the {route} AGI's {argument!r} is {value!r}, not "
                             f"${{{variable}}} URI-encoded (${{URIENCODE(${{{variable}}})}})")
    return found


def check_bridge(
    contexts: Mapping[str, Context], context_name: str, *, dial_variable: str, dial_samples: Iterable[str],
    event: str, headers: Mapping[str, str],
) -> list[str]:
    """The context the service originates an agent's leg into: s,1 exists; `s` dials the
    variable `dial_variable` with a timeout, each of `dial_samples` (the dial strings the line
    makes) reaching Dial unchanged and no `&` or `,` a variable could bring reaching it at all;
    `h` sends `UserEvent(event,Header: ${VARIABLE},...)` with each of `headers` (header →
    channel variable), which is how the service learns the outcome."""
    context = contexts.get(context_name)
    if context is None:
        return [f"context {context_name!r} (the service's bridges) is not defined"]
    found = []
    if not context.has_priority("s", "1"):
        found.append(f"{context.where}: [{context_name}] has no s,1, where the Originate lands")
    dials = [s for s in context.steps if s.exten == "s" and s.app.lower() == "dial"]
    if not dials:
        found.append(f"{context.where}: [{context_name}] s dials nothing (no Dial(${{{dial_variable}}}))")
    for step in dials:
        device = step.args[0] if step.args else ""
        if f"${{{dial_variable}}}" not in device:
            found.append(f"{step.where}: Dial({','.join(step.args)}) does not dial ${{{dial_variable}}}")
            continue
        for sample in dial_samples:
            if substitute(device, {dial_variable: sample}) != sample:
                found.append(f"{step.where}: Dial({device}) turns the dial string {sample!r} into "
                             f"{substitute(device, {dial_variable: sample})!r}")
        hostile = substitute(device, {dial_variable: "PJSIP/1@a&PJSIP/2@b,,U(x)"})
        if "&" in hostile or "," in hostile:
            found.append(f"{step.where}: Dial({device}) lets `&` or `,` of ${{{dial_variable}}} through "
                         "(another destination, Dial options): FILTER() it")
        if len(step.args) < 2 or not step.args[1].strip().isdigit() or int(step.args[1]) <= 0:
            found.append(f"{step.where}: Dial({','.join(step.args)}) has no timeout: the key holder's "
                         "leg would ring as long as the far end lets it")
    events = [s for s in context.steps if s.exten == "h" and s.app.lower() == "userevent"
              and s.args and s.args[0] == event]
    if not events:
        return [*found, f"{context.where}: [{context_name}] has no h extension sending UserEvent({event},...): "
                        "the service never learns how the key holder's leg ended"]
    for step in events:
        # UserEvent: each argument after the name is `Key:value`, the key as written, the value
        # stripped (apps/app_userevent.c).
        body = [arg.partition(":") for arg in step.args[1:]]
        sent = {key: value.strip() for key, sep, value in body if sep}
        for header, variable in headers.items():
            sample = f"{variable.lower()}-1"
            if header not in sent:
                found.append(f"{step.where}: UserEvent({event},...) sends no {header!r} header "
                             f"(from ${{{variable}}})")
            elif substitute(sent[header], {variable: sample}) != sample:
                found.append(f"{step.where}: UserEvent({event},...) header {header!r} is "
                             f"{sent[header]!r}, not ${{{variable}}}")
    return found


def check_context_table(text: str, contexts: Mapping[str, Context]) -> list[str]:
    """extensions.conf's table of contexts (`; | context | who enters it | file |`) has a row
    for every context of the dialplan, and no row for a context that is not one."""
    rows = re.findall(r"^;\s*\|\s*([a-z][a-z0-9-]*)\s*\|", text, re.MULTILINE)
    listed = [row for row in rows if row != "context"]
    found = [f"extensions.conf: context {name!r} has no row in the table of contexts"
             for name in contexts if name not in listed]
    found += [f"extensions.conf: the table of contexts lists {name!r}, which is no context"
              for name in listed if name not in contexts]
    return found


def check_dial_template(
    template: str, contexts: Mapping[str, Context], pjsip: Config, *, what: str = "IVR_OUTBOUND_DIAL",
) -> list[str]:
    """A dial template ({number} in a dial string) reaches something that exists:
    `Local/<exten>@<context>[/n]` a context of the dialplan (with that extension when it is
    written out); `PJSIP/<number>@<endpoint>`, `PJSIP/<endpoint>/<uri>` or `PJSIP/<endpoint>`
    a PJSIP endpoint of pjsip.conf."""
    tech, _, rest = template.partition("/")
    if template.count("{number}") != 1:
        return [f"{what} is {template!r}: it must hold {{number}} once"]
    if tech == "Local":
        local = re.fullmatch(r"([^@/]+)@([^/]+)(/[nbm]+)?", rest)
        if local is None:
            return [f"{what} is {template!r}: not Local/<extension>@<context>"]
        context = contexts.get(local.group(2))
        if context is None:
            return [f"{what} is {template!r}: context {local.group(2)!r} is not defined"]
        exten = local.group(1)
        if "{number}" not in exten and not context.matching(exten):
            return [f"{what} is {template!r}: context {local.group(2)!r} has no extension {exten!r}"]
        return []
    if tech == "PJSIP":
        endpoint = rest.split("/")[0] if "/" in rest else rest.rpartition("@")[2]
        if "{number}" in endpoint:
            return [f"{what} is {template!r}: the endpoint is the number, which no check can find in pjsip.conf"]
        if endpoint not in {s.name for s in pjsip.of_type("endpoint")}:
            return [f"{what} is {template!r}: no PJSIP endpoint {endpoint!r} in pjsip.conf"]
        return []
    return [f"{what} is {template!r}: not a Local/ or PJSIP/ dial string the line can check"]


AMI_ACTION_CLASSES: dict[str, frozenset[str]] = {
    "Login": frozenset(), "Logoff": frozenset(), "Ping": frozenset(), "Events": frozenset(),
    "Originate": frozenset({"originate"}),
    "CoreShowChannels": frozenset({"system", "reporting"}),
    "Hangup": frozenset({"system", "call"}),
    "Command": frozenset({"command"}),
}
"""The classes Asterisk 22 registers each AMI action with (main/manager.c, `ast_manager_register_xml_core`):
a user may run it when its `write` holds one of them (main/manager.c `process_message`:
`writeperm & authority`); none means anyone logged in."""

AMI_EVENT_CLASSES: dict[str, str] = {
    "OriginateResponse": "call", "Newchannel": "call", "Newstate": "call", "Hangup": "call",
    "UserEvent": "user",
}
"""The class of each AMI event the service reads (main/manager.c, main/manager_channels.c,
main/stasis.c): a user receives it when its `read` holds that class."""

AMI_FORBIDDEN_WRITE = frozenset({"all", "system", "command", "config"})
"""`write` classes that reach past calls: shell commands, configuration, reloads, modules."""


def ami_classes(value: str | None) -> set[str]:
    """The classes of a manager.conf `read` or `write`: `call, User` → {"call", "user"}."""
    return {c.strip().lower() for c in (value or "").split(",") if c.strip()}


def check_ami_user(manager: Config, username: str, actions: Iterable[str], events: Iterable[str]) -> list[str]:
    """The AMI user `username` may run each of `actions` and receives each of `events`, and
    writes nothing of `system`, `command`, `config` (or `all`)."""
    user = next((s for s in manager.named(username) if not s.is_template), None)
    if user is None:
        return [f"manager.conf: no AMI user [{username}]"]
    read, write = ami_classes(user.get("read")), ami_classes(user.get("write"))
    found = []
    for action in actions:
        classes = AMI_ACTION_CLASSES.get(action)
        if classes is None:
            found.append(f"the AMI action {action} has no known class: add it to AMI_ACTION_CLASSES "
                         "from main/manager.c")
        elif classes and not classes & write and "all" not in write:
            found.append(f"{user.where}: AMI user {username} may not run {action} "
                         f"(write needs one of {', '.join(sorted(classes))})")
    missing: dict[str, list[str]] = {}
    for event in events:
        needed = AMI_EVENT_CLASSES.get(event)
        if needed is None:
            found.append(f"the AMI event {event} has no known class: add it to AMI_EVENT_CLASSES")
        elif needed not in read and "all" not in read:
            missing.setdefault(needed, []).append(event)
    for needed, names in missing.items():
        found.append(f"{user.where}: AMI user {username} does not receive {', '.join(names)} (read needs {needed})")
    if write & AMI_FORBIDDEN_WRITE:
        found.append(f"{user.where}: AMI user {username} writes "
                     f"{', '.join(sorted(write & AMI_FORBIDDEN_WRITE))}: more than calls")
    return found


def compose_value(value: object, env: Mapping[str, str] | None = None) -> str:
    """A compose value with `${VAR}`, `${VAR:-default}`, `${VAR-default}` resolved from `env`
    (default: nothing set, so the defaults apply)."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        got = env.get(name)
        if (op == ":-" and not got) or (op == "-" and got is None):
            return default
        return got or ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}", one, str(value))


def check_ami_client(environment: Mapping[str, object], manager: Config, ami_hosts: Iterable[str]) -> list[str]:
    """The service's AMI settings in compose reach manager.conf's AMI: IVR_AMI_HOST (its
    default) is one of `ami_hosts` (the names and address Asterisk's AMI binds to), IVR_AMI_PORT
    (when set) the AMI's port, IVR_AMI_USERNAME a user there, and IVR_AMI_SECRET is
    `${NAME}`/`${NAME:-}` of the same NAME as that user's secret: one value, from .env."""
    found = []
    host = compose_value(environment.get("IVR_AMI_HOST", ""))
    if host not in set(ami_hosts):
        found.append(f"docker-compose.yml: IVR_AMI_HOST is {host!r} by default, not the "
                     f"AMI's address ({', '.join(sorted(ami_hosts))})")
    general = manager.first("general")
    port = general.get("port", "5038") if general else "5038"
    if "IVR_AMI_PORT" in environment and compose_value(environment["IVR_AMI_PORT"]) != port:
        found.append(f"docker-compose.yml: IVR_AMI_PORT is {environment['IVR_AMI_PORT']!r}, the AMI listens on {port}")
    username = str(environment.get("IVR_AMI_USERNAME", ""))
    user = next((s for s in manager.named(username) if not s.is_template), None)
    if user is None:
        return [*found, f"docker-compose.yml: IVR_AMI_USERNAME is {username!r}, no user of manager.conf"]
    placeholder = re.fullmatch(r"\$\{([A-Z][A-Z0-9_]*)\}", user.get("secret") or "")
    secret = re.fullmatch(r"\$\{([A-Z][A-Z0-9_]*)(:-)?\}", str(environment.get("IVR_AMI_SECRET", "")))
    if secret is None:
        found.append("docker-compose.yml: IVR_AMI_SECRET is not ${NAME} from the deployment (.env)")
    elif placeholder is None or placeholder.group(1) != secret.group(1):
        found.append(f"docker-compose.yml: IVR_AMI_SECRET comes from {secret.group(1)}, the AMI user "
                     f"{username}'s secret from {user.get('secret')}")
    return found


Networks = list["ipaddress.IPv4Network | ipaddress.IPv6Network"]


def _inside(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return ip.is_loopback or any(ip in net for net in networks)


def _acl_net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip().replace(" ", ""), strict=False)


def check_listeners(manager: Config, http: Config, service_networks: Networks) -> list[str]:
    """AMI and ARI listen on loopback or the service network only: a bind address outside it,
    or 0.0.0.0 without a deny-all-then-permit-inside on every AMI user (ARI has no ACL)."""
    found = []
    general = manager.first("general")
    if general is not None and (general.get("enabled", "no") or "").lower() in ("yes", "true", "1", "on"):
        bind = general.get("bindaddr", "0.0.0.0") or "0.0.0.0"
        wildcard = bind in ("0.0.0.0", "::")
        if not wildcard and not _inside(bind, service_networks):
            found.append(f"{general.where}: AMI binds to {bind}, outside the service network")
        for user in manager.sections:
            if user.name == "general" or user.is_template:
                continue
            denies = [_acl_net(d) for d in user.values("deny")]
            permits = [_acl_net(p) for p in user.values("permit")]
            outside = [str(p) for p in permits
                       if not any(p.subnet_of(n) for n in service_networks if n.version == p.version)
                       and not (p.network_address.is_loopback)]
            if outside:
                found.append(f"{user.where}: AMI user {user.name} permits "
                             f"{', '.join(outside)}, beyond the service network")
            if wildcard and not any(d.prefixlen == 0 for d in denies):
                found.append(f"{user.where}: AMI listens on {bind} and user {user.name} has no deny=0.0.0.0/0.0.0.0")
            if wildcard and not permits:
                found.append(f"{user.where}: AMI listens on {bind} and user {user.name} permits nothing explicitly")
    http_general = http.first("general")
    if http_general is not None and (http_general.get("enabled", "no") or "").lower() in ("yes", "true", "1", "on"):
        for key in ("bindaddr", "tlsbindaddr"):
            bind = http_general.get(key)
            if bind is None:
                continue
            host = bind.rsplit(":", 1)[0] if bind.count(":") == 1 else bind
            if not _inside(host, service_networks):
                found.append(f"{http_general.where}: HTTP (ARI) {key} {bind} is "
                             "beyond the service network; ARI has no address ACL")
    return found


def check_placeholders(used: Mapping[str, Iterable[str]], documented: Iterable[str]) -> list[str]:
    """Every placeholder a template uses has an entry in asterisk.env.example."""
    names = set(documented)
    return [f"{file}: ${{{name}}} has no entry in asterisk.env.example"
            for file, placeholders in used.items() for name in sorted(set(placeholders)) if name not in names]


def env_names(text: str) -> list[str]:
    """The variable names of a `.env`-style file (NAME=value lines)."""
    return [m.group(1) for m in re.finditer(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", text, re.MULTILINE)]


SECRET_KEYS = {"password", "secret", "md5_cred", "turnpassword"}


def check_secrets(configs: Mapping[str, Config]) -> list[str]:
    """Every password or secret is a `${NAME}` placeholder, filled from the deployment."""
    found = []
    for config in configs.values():
        for section in config.sections:
            for entry in section.entries:
                if entry.key in SECRET_KEYS and not re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*\}", entry.value):
                    found.append(f"{entry.where}: [{section.name}] {entry.key} is "
                                 f"written in the file, not a ${{NAME}} placeholder")
    return found


# -- what Asterisk logs --------------------------------------------------------------------

LEAKY_LEVELS = {"debug", "trace", "dtmf", "*"}
"""Log levels that carry what callers press (debug, dtmf: DTMF digits) or the files Asterisk
plays (trace); `verbose` is checked apart, since it takes a level: `verbose(3)`."""
LEAKY_OPTIONS = ("verbose", "debug", "trace")
LEAKY_FLAGS = set("vd")
LEAKY_AMI_CLASSES = {"all", "agi", "dialplan", "dtmf"}
"""AMI event classes that carry codes: `agi` (AGIExecStart: `SAY DIGITS <code>`), `dialplan`
(Newexten's application data, VarSet's values), `dtmf` (each key a caller presses)."""


def log_levels(value: str) -> list[str]:
    """The levels of a logger.conf channel, `[formatter]` left out: `[json]notice, Warning`
    → ["notice", "warning"]."""
    value = re.sub(r"^\s*\[[^\]]*\]", "", value)
    return [level.strip().lower() for level in value.split(",") if level.strip()]


def leaky_flags(command: Iterable[str]) -> list[str]:
    """The arguments of an `asterisk` command line that raise its verbose or debug level:
    `-v`, `-vvv`, `-d`, `-vvvdddf` (short flags, which Asterisk lets one combine)."""
    args = list(command)[1:]
    return [arg for arg in args if arg.startswith("-") and not arg.startswith("--") and LEAKY_FLAGS & set(arg[1:])]


def check_logging(configs: Mapping[str, Config], commands: Mapping[str, Iterable[str]]) -> list[str]:
    """Nothing Asterisk logs, nor any event it hands out, spells the codes the line reads to
    callers (or the keys they press). `configs` maps file names (asterisk.conf, logger.conf,
    pjsip.conf, manager.conf, cdr.conf, cel.conf) to their `Config`; `commands` maps where a
    start command is written (e.g. "Dockerfile CMD") to its arguments.

    - asterisk.conf `verbose`, `debug` and `trace` are 0 (or absent): at verbose 3 Asterisk logs
      "Playing 'digits/4.wav'" for every digit of SAY DIGITS, SayDigits and ARI digit playbacks,
      and every dialplan step with its arguments (main/file.c, main/pbx.c);
    - no logger.conf channel (console, files, syslog) takes `verbose`, `debug`, `trace`,
      `dtmf` or `*`: a file with `verbose` logs every verbose message made (main/logger.c);
    - no start command passes -v or -d (they add to asterisk.conf's levels);
    - pjsip.conf's global `debug` is off: the SIP logger writes to every console;
    - CDR and CEL are off (`lastdata` and CEL's appdata would hold AGI and Set arguments);
    - no AMI user reads the `agi`, `dialplan`, `dtmf` (or `all`) events.
    """
    found = []
    asterisk = configs.get("asterisk.conf")
    options = asterisk.first("options") if asterisk else None
    if options is None:
        found.append("asterisk.conf: no [options]: verbose must be set to 0 there")
    else:
        for key in LEAKY_OPTIONS:
            for entry in (e for e in options.entries if e.key == key):
                if entry.value.strip() != "0":
                    found.append(f"{entry.where}: {key} = {entry.value}: must be 0, or the log spells out the codes")
    logger = configs.get("logger.conf")
    logfiles = logger.first("logfiles") if logger else None
    for entry in logfiles.entries if logfiles else []:
        for level in log_levels(entry.value):
            if level in LEAKY_LEVELS or level.startswith("verbose"):
                found.append(f"{entry.where}: log channel {entry.key} takes {level}, which spells out codes or keys")
    for where, command in commands.items():
        for flag in leaky_flags(command):
            found.append(f"{where}: {flag} raises the verbose or debug level of the start command")
    pjsip = configs.get("pjsip.conf")
    for section in pjsip.of_type("global") if pjsip else []:
        debug = (section.get("debug", "no") or "no").lower()
        if debug not in ("no", "false", "0", "off"):
            found.append(f"{section.where}: [{section.name}] debug = {debug}: the SIP logger writes to every console")
    for name in ("cdr.conf", "cel.conf"):
        config = configs.get(name)
        general = config.first("general") if config else None
        if general is None or (general.get("enable", "") or "").lower() not in ("no", "false", "0", "off"):
            found.append(f"{name}: [general] enable must be no (records would hold AGI and dialplan arguments)")
    manager = configs.get("manager.conf")
    for user in manager.sections if manager else []:
        if user.name == "general" or user.is_template:
            continue
        for entry in (e for e in user.entries if e.key == "read"):
            classes = {c.strip().lower() for c in entry.value.split(",")} & LEAKY_AMI_CLASSES
            if classes:
                found.append(f"{entry.where}: AMI user {user.name} reads "
                             f"{', '.join(sorted(classes))} events, which carry codes or keys")
    return found


STARTUP_FILES = {
    # read by Asterisk's core: a missing one is a WARNING or ERROR at every start
    "acl.conf": None, "ccss.conf": None, "features.conf": None, "stasis.conf": None, "udptl.conf": None,
    # read by a module at load: shipped, or the module left out (noload)
    "pjproject.conf": "res_pjproject.so", "websocket_client.conf": "res_websocket_client.so",
    "geolocation.conf": "res_geolocation.so", "pjsip_wizard.conf": "res_pjsip_config_wizard.so",
    "pjsip_notify.conf": "res_pjsip_notify.so", "res_parking.conf": "res_parking.so",
    "agents.conf": "app_agent_pool.so", "amd.conf": "app_amd.so", "cli_aliases.conf": "res_clialiases.so",
    "res_http_media_cache.conf": "res_http_media_cache.so", "chan_websocket.conf": "chan_websocket.so",
}
"""The configuration files whose absence Asterisk 22 logs as a WARNING or ERROR at start (seen
on a real Asterisk 22 with `autoload = yes`), and who reads them (None: the core)."""


def check_startup_files(
    modules: Config, shipped: Iterable[str], needed: Mapping[str, str | None] = STARTUP_FILES
) -> list[str]:
    """Asterisk starts without WARNING or ERROR: each file of `needed` is shipped, or the
    module that reads it is `noload`ed (the core's files must be shipped)."""
    section = modules.first("modules")
    noload = set(section.values("noload")) if section else set()
    have = set(shipped)
    found = []
    for name, module in needed.items():
        if name in have or (module is not None and module in noload):
            continue
        reader = f"{module} loads" if module else "the core reads it"
        found.append(f"{name} is missing and {reader}: Asterisk logs a WARNING "
                     "or ERROR at every start (ship it, or noload the module)")
    return found
