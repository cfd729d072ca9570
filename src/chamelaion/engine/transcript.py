"""A transcript of the new audio, turned into the phones it says (grapheme-to-phoneme).

Dubbing studios have the script of the dub. The phone recogniser (`phones`) guesses which
sounds are spoken; a transcript says which ones are, so `alignment` only has to find *when*.
The text becomes phones with espeak-ng (GPL-3, a Debian package `make setup` installs, run as a
separate program: nothing of it is linked into Chamelaion), which reads about a hundred
languages, so a transcript needs its language: a BCP-47-like tag ("en", "fr-FR", "pt-BR",
"zh") resolved to one of the voices espeak-ng has on this machine (`resolve_language`).

This module needs only the standard library, so the HTTP service validates a request's
transcript language with it without loading the engine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache

from chamelaion.engine.errors import TranscriptError

LANGUAGE_TAG_PATTERN = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,5}$"
_TAG = re.compile(LANGUAGE_TAG_PATTERN)
_ALIAS = re.compile(r"\(([^\s()]+) (\d+)\)")
# A number's separator, an apostrophe or hyphen inside a word (kept); else any character that
# is neither a word character nor white space, or an underscore (said as nothing).
_KEPT_OR_UNSPOKEN = re.compile(r"(?<=\d)[.,](?=\d)|(?<=\w)['’-](?=\w)|(?P<unspoken>[^\w\s]|_)")
_SWITCH = re.compile(r"\([^()\s]*\)")  # espeak's "(en)"... "(fr)": a word read in another voice
G2P_TIMEOUT_SECONDS = 120.0


@cache
def voices() -> dict[str, str]:
    """Lower-case language tag -> espeak-ng voice, for every voice and alias espeak-ng lists
    (`espeak-ng --voices`: "en" is an alias of "en-gb", "zh" of "cmn"); empty without espeak."""
    program = shutil.which("espeak-ng")
    if program is None:
        return {}
    listing = subprocess.run(
        [program, "--voices"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    table: dict[str, str] = {}
    aliases: dict[str, tuple[int, str]] = {}
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 2:
            continue
        language = fields[1]
        table.setdefault(language.lower(), language)
        for alias, priority in _ALIAS.findall(line):
            best = aliases.get(alias.lower())
            if best is None or int(priority) < best[0]:
                aliases[alias.lower()] = (int(priority), language)
    for alias, (_, language) in aliases.items():
        table.setdefault(alias, language)
    return table


def resolve_language(tag: str) -> str:
    """The espeak-ng voice for a BCP-47-like tag: the tag itself ("pt-br"), else the tag with
    its last subtags dropped one by one ("fr-FR" -> "fr", an alias of "fr-fr"). Raises
    `TranscriptError` naming the tag when no voice fits."""
    table = voices()
    if not table:
        raise TranscriptError("transcripts need espeak-ng, which is not installed on the server")
    if is_language_tag(tag):
        parts = tag.lower().replace("_", "-").split("-")
        for end in range(len(parts), 0, -1):
            voice = table.get("-".join(parts[:end]))
            if voice is not None:
                return voice
    raise TranscriptError(
        f"unsupported transcript_language {tag[:40]!r}: give a language tag espeak-ng reads, "
        f"one of {', '.join(sorted(table))}"
    )


def is_language_tag(tag: str) -> bool:
    """Whether `tag` is shaped like a BCP-47 tag ("en", "pt-BR", "zh-Hans-CN"), known or not."""
    return _TAG.fullmatch(tag) is not None


def phonemes(text: str, voice: str) -> list[list[str]]:
    """The words of `text` as espeak-ng says them in `voice`, each a list of IPA phones
    (stress marks dropped; a diphthong or affricate is one phone, as espeak-ng counts them).
    Words espeak-ng reads in another voice ("weekend" in French) are kept, in that voice."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise TranscriptError("transcripts need espeak-ng, which is not installed on the server")
    # The text goes through stdin: never parsed as options, no length limit of a command line.
    done = subprocess.run(
        [program, "-q", "--ipa=1", "-v", voice, "--stdin"],
        input=speakable(text),
        capture_output=True,
        text=True,
        timeout=G2P_TIMEOUT_SECONDS,
        check=False,
    )
    words = []
    for word in _SWITCH.sub("", done.stdout).split():
        word_phones = [p for p in (_clean(piece) for piece in word.split("_")) if p]
        if word_phones:
            words.append(word_phones)
    return words


def speakable(text: str) -> str:
    """`text` with what a dub does not say replaced by spaces: espeak-ng reads lone punctuation
    and symbols aloud ("!!!" as "exclamation", an emoji by its name). Kept: letters, digits,
    "3.5" and "1,000", and apostrophes and hyphens inside words ("o'clock", "m'appelle")."""
    return _KEPT_OR_UNSPOKEN.sub(lambda m: " " if m["unspoken"] else m[0], text)


def _clean(phone: str) -> str:
    """A phone without stress marks, ties, tone numbers (Mandarin "o2", Vietnamese "aː6": the
    lips do not show tone) and the punctuation espeak-ng leaves in (French "ʒə-")."""
    return "".join(c for c in phone if c not in "ˈˌ-‍͡'.0123456789" and not c.isspace())
