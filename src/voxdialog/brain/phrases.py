"""Whole-utterance phrases: yes and no, small talk, and the filler around commands."""

from __future__ import annotations

from collections.abc import Mapping

from voxdialog.brain.words import Words, repeated, token_pattern


def _phrases(text: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(p.split()) for p in text.split(","))


YES = _phrases(
    "yes,yeah,yep,yup,ya,yah,yea,yes please,sure,sure thing,correct,thats correct,right,"
    "thats right,exactly,absolutely,definitely,of course,ok,okay,alright,all right,affirmative,"
    "confirm,confirmed,do it,go ahead,go for it,please do,that one,thats the one,thats it,indeed,"
    "sounds good,perfect,yes it is,it is,uh huh,mhm,i did,i do,yes i did,do that,you got it,"
    "yes sir,true,precisely,why not,go on,proceed,that is right,that is correct,sure is"
)
NO = _phrases(
    "no,nope,nah,no thanks,no thank you,not that,not that one,not really,wrong,thats wrong,"
    "incorrect,dont,do not,dont do it,do not do it,cancel,cancel that,cancel it,never mind,"
    "nevermind,forget it,forget that,stop,negative,no way,leave it,skip it,skip,not quite,"
    "thats not it,thats not right,no its not,dont bother,abort,no no"
)
_NEUTRAL = _phrases("please,thanks,thank you,it,that,one,sir,then,just,then,now,oh,well,so")
GREETING = _phrases(
    "hi,hello,hey,hey there,hi there,hello there,good morning,good afternoon,good evening,howdy,"
    "greetings,yo,hiya,how are you,how are you doing,hows it going,how is it going,whats up,"
    "good day,morning,evening,hello hello"
)
_GREETING_EXTRA = _phrases("there,assistant,friend,again,everyone,and,today,buddy,you")
THANKS = _phrases(
    "thank you,thanks,thank you so much,thanks a lot,many thanks,cheers,appreciate it,"
    "i appreciate it,thank you very much,thanks so much,thank you kindly,ta,thx"
)
_THANKS_EXTRA = _phrases(
    "so,much,very,a,lot,great,perfect,awesome,ok,okay,that is,thats,good,nice,cool,brilliant,"
    "excellent,wonderful,lovely,fantastic,that was,helpful,really"
)
GOODBYE = _phrases(
    "bye,goodbye,good bye,bye bye,see you,see you later,see ya,good night,goodnight,"
    "talk to you later,thats all,that is all,thats all for now,that will be all,im done,"
    "i am done,catch you later,farewell,have a good day,have a nice day,stop listening,bye now,"
    "later,see you soon,so long,take care,until next time,thats everything"
)
_GOODBYE_EXTRA = _phrases("ok,okay,thanks,thank you,then,for now,great,well,alright,and")

_HEAD_FILLER = token_pattern(
    "^"
    + repeated(
        r"um+|uh+|uhm|er+|erm|hmm+|ah+|oh|okay|ok|so|well|hey|alright|all right|right|now"
        r"|and|also|please|just|then|actually|can you|could you|would you|will you|can i|could i"
        r"|can you please|could you please|would you please|i want you to|i need you to"
        r"|id like you to|i would like you to|lets|let us|go ahead and|you can|assistant|computer"
        r"|hey assistant|quickly|kindly|also please|yes and|and then|one more thing"
    )
)
WANT_HEAD = token_pattern(r"^(?:i want to|i wanna|id like to|i would like to|i wish to)")
_ANYWHERE_FILLER = frozenset(("um", "umm", "uh", "uhh", "uhm", "erm", "er", "hmm", "please"))
_TAIL_WORDS = (
    r"(?:please|thanks|thank you|for me|ok|okay|right now|if you can|if you could"
    r"|if you would|would you|could you|can you|will you|cheers|thank you very much)"
)
_TAIL_FILLER = token_pattern(repeated(_TAIL_WORDS) + "$")


def consume(words: Words, kinds: Mapping[str, frozenset[tuple[str, ...]]]) -> list[str] | None:
    """Cover ``words`` completely with phrases; return their kinds in order, or None.

    Tries the longest phrase first at each position, e.g. "no, cancel that" is
    ``["no", "no", "neutral"]`` with ``kinds={"no": NO, ..., "neutral": ...}``.
    """
    found: list[str] = []
    norm = words.norm
    i = 0
    while i < len(norm):
        for size in range(min(6, len(norm) - i), 0, -1):
            piece = norm[i : i + size]
            kind = next((k for k, phrases in kinds.items() if piece in phrases), None)
            if kind is not None:
                found.append(kind)
                i += size
                break
        else:
            return None
    return found


def yes_or_no(words: Words) -> str | None:
    """ "yes" or "no" when the whole utterance is an answer ("yeah, do it", "no, cancel that")."""
    kinds = consume(words, {"yes": YES, "no": NO, "neutral": _NEUTRAL})
    if not kinds:
        return None
    return next((k for k in kinds if k != "neutral"), None)


_LEADING_YES = _phrases("yes,yeah,yep,yup,sure,ok,okay,alright,yes please,correct,right")
_LEADING_NO = _phrases("no,nope,nah,no thanks,no thank you,not that one,wrong")


def leading_answer(words: Words) -> tuple[str, Words] | None:
    """A plain yes or no that opens a longer utterance ("no, delete buy milk"), and the rest."""
    for size in range(min(3, len(words) - 1), 0, -1):
        head = tuple(words.norm[:size])
        if head in _LEADING_YES or head in _LEADING_NO:
            return ("yes" if head in _LEADING_YES else "no"), words.slice(size)
    return None


def small_talk(words: Words) -> str | None:
    """ "greeting", "thanks" or "goodbye" when that is all the utterance says."""
    for intent, phrases, extra in (
        ("thanks", THANKS, _THANKS_EXTRA),
        ("goodbye", GOODBYE, _GOODBYE_EXTRA),
        ("greeting", GREETING, _GREETING_EXTRA),
    ):
        kinds = consume(words, {intent: phrases, "extra": extra})
        if kinds and intent in kinds:
            return intent
    return None


def strip_filler(words: Words) -> tuple[Words, bool]:
    """Remove hesitations and politeness around a command; the flag says an "I want to" went."""
    kept = [i for i, w in enumerate(words.norm) if w not in _ANYWHERE_FILLER]
    if kept and len(kept) < len(words):
        words = Words(tuple(words.orig[i] for i in kept), tuple(words.norm[i] for i in kept))
    wanted = False
    if small_talk(words):
        return words, wanted
    previous = None
    while previous != words.norm:
        previous = words.norm
        rest, match = words.cut(_HEAD_FILLER)
        if match is not None and rest:
            words = rest
        rest, match = words.cut(WANT_HEAD)
        if match is not None and rest:
            words, wanted = rest, True
        greeting = _greeting_prefix(words)
        if greeting:
            words = words.slice(greeting)
        rest, match = words.cut(_TAIL_FILLER)
        if match is not None and rest:
            words = rest
    return words, wanted


def _greeting_prefix(words: Words) -> int:
    """How many tokens a greeting before a command takes ("hi, add a task ..."), else 0."""
    for size in (3, 2, 1):
        if len(words) > size and tuple(words.norm[:size]) in GREETING:
            if words.norm[size] == "priority":  # "hi priority" is Whisper's "high priority"
                return 0
            return size
    return 0
