"""The `520` reply Asterisk gives a known command with wrong arguments, word for word.

res_agi.c's `agi_handle_command` sends, for RESULT_SHOWUSAGE::

    520-Invalid command syntax.  Proper usage follows:
    <usage>
    520 End of proper usage.

where the usage (`ast_agi_send(fd, chan, "%s\\n", c->usage)`) is the command's XML
`<description>` as `ast_xmldoc_build_description` flattens it (main/xmldoc.c): one line per
`<para>`, inline elements kept as `<literal>…</literal>`, `<enumlist>` entries as
`    <enum>N</enum> - text`, `<variablelist>` entries as `<variable>NAME</variable>: text` with
`    <value>V</value>` lines, a `<note>` prefixed by `<note>NOTE:</note> `. The texts below are
those of Asterisk 20's res_agi.c for the commands the simulator runs.
"""

from __future__ import annotations

__all__ = ["usage_reply"]

_USAGE: dict[str, str] = {
    "channel status": (
        "Returns the status of the specified <replaceable>channelname</replaceable>. If no channel name is given "
        "then returns the status of the current channel.\n"
        "Return values:\n"
        "    <enum>0</enum> - Channel is down and available.\n"
        "    <enum>1</enum> - Channel is down, but reserved.\n"
        "    <enum>2</enum> - Channel is off hook.\n"
        "    <enum>3</enum> - Digits (or equivalent) have been dialed.\n"
        "    <enum>4</enum> - Line is ringing.\n"
        "    <enum>5</enum> - Remote end is ringing.\n"
        "    <enum>6</enum> - Line is up.\n"
        "    <enum>7</enum> - Line is busy."
    ),
    "exec": (
        "Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.\n"
        "Returns whatever the <replaceable>application</replaceable> returns, or <literal>-2</literal> on failure "
        "to find <replaceable>application</replaceable>.\n"
        "<note>NOTE:</note> exec does not evaluate dialplan functions and variables unless it is explicitly "
        "enabled by setting the <variable>AGIEXECFULL</variable> variable to <literal>yes</literal>."
    ),
    "get data": (
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        "Returns the digits received from the channel at the other end."
    ),
    "get variable": (
        "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. Returns "
        "<literal>1</literal> if <replaceable>variablename</replaceable> is set and returns the variable in "
        "parentheses.\n"
        "Example return code: 200 result=1 (testvariable)"
    ),
    "hangup": ("Hangs up the specified channel. If no channel name is given, hangs up the current channel"),
    "say digits": (
        "Say a given digit string, returning early if any of the given DTMF digits are received on the channel. "
        "Returns <literal>0</literal> if playback completes without a digit being pressed, or the ASCII "
        "numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup."
    ),
    "set variable": "Sets a variable to the current channel.",
    "stream file": (
        "Send the given file, allowing playback to be interrupted by the given digits, if any. Returns "
        "<literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical value "
        "of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was disconnected. "
        "If musiconhold is playing before calling stream file it will be automatically stopped and will not be "
        "restarted after completion.\n"
        "It sets the following channel variables upon completion:\n"
        "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
        "    <value>SUCCESS</value>\n"
        "    <value>FAILED</value>"
    ),
    "verbose": (
        "Sends <replaceable>message</replaceable> to the console via verbose message system. "
        "<replaceable>level</replaceable> is the verbose level (1-4). Always returns <literal>1</literal>"
    ),
    "wait for digit": (
        "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF digit. Returns "
        "<literal>-1</literal> on channel failure, <literal>0</literal> if no digit is received in the timeout, "
        "or the numerical value of the ascii of the digit if one is received. Use <literal>-1</literal> for the "
        "<replaceable>timeout</replaceable> value if you desire the call to block indefinitely."
    ),
}


def usage_reply(command: str) -> str:
    """The whole 520 reply (lines joined by newlines, no final newline) for `command`, e.g. `get data`."""
    usage = _USAGE.get(command)
    if usage is None:
        return "520 Invalid command syntax.  Proper usage not available."
    return f"520-Invalid command syntax.  Proper usage follows:\n{usage}\n520 End of proper usage."
