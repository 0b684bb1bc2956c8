#!/usr/bin/env python3
"""Generate the chat-template reference renders that tests/test_chat*.cpp compare byte-for-byte.

Every expected string is what Hugging Face transformers computes:
  * model_refs.json  - tokenizer.apply_chat_template(messages, tokenize=False, ...) for the real templates
                       (shared/assets/chat-templates/*.jinja and the tokenizer_config.json of the mini models),
                       >= 10 conversations per template.
  * ollama_refs.json - the same for the 37 HF chat templates in shared/assets/chat-templates/ollama-template-index.json
                       (a wider corpus of real templates), a few conversations each.
  * jinja_cases.json - small templates (cases in jinja_cases.py) rendered with HF's own compiled Jinja environment
                       (transformers.utils.chat_template_utils._compile_jinja_template): trim_blocks, lstrip_blocks,
                       loopcontrols, HF's tojson/raise_exception/strftime_now/namespace.

strftime_now() is pinned: transformers' chat_template_utils.datetime is replaced by a class whose now() returns the
case's `now` (default 2025-03-05 12:00:00), and the C++ side passes the same date through ChatRenderOptions::now.

Usage: pip install transformers jinja2 sentencepiece; python3 scripts/chat/make_chat_refs.py [--shared /work/shared]
"""
import argparse
import datetime as _dt
import hashlib
import json
import os
import sys

import jinja2
import transformers
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils import chat_template_utils as ctu

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jinja_cases import JINJA_CASES, UNSUPPORTED_CASES  # noqa: E402

DEFAULT_NOW = "2025-03-05T12:00:00"
_pinned_now = [DEFAULT_NOW]


class _PinnedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromisoformat(_pinned_now[0])


ctu.datetime = _PinnedDatetime  # strftime_now() inside HF's Jinja env reads this name


def describe_error(e):
    return {"type": type(e).__name__, "message": str(e)}


# ----------------------------------------------------------------------------------------------------------------
# Conversations
# ----------------------------------------------------------------------------------------------------------------
U = lambda c: {"role": "user", "content": c}  # noqa: E731
A = lambda c: {"role": "assistant", "content": c}  # noqa: E731
S = lambda c: {"role": "system", "content": c}  # noqa: E731

UNICODE = "Héllo wörld — 你好，世界 🎉🦙 ½ ñ Ωμέγα Привет"
BRACES = "{{ not_a_var }} {% if x %}{% endif %} {# c #} 'single' \"double\" \\backslash \\n <|eot_id|>? {}"
THINK = "<think>\nThe user greets me. I should greet back.\n</think>\n\nHello! How can I help?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — à la carte",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
            },
            "required": ["city"],
        },
    },
}


def long_chat(n_turns):
    msgs = [S("You are a terse assistant.")]
    for i in range(n_turns):
        msgs.append(U(f"Question {i}: what is {i} + {i}?"))
        msgs.append(A(f"{i} + {i} = {2 * i}."))
    msgs.append(U("Thanks. One more: 7 * 6?"))
    return msgs


def common_conversations():
    """(name, messages, add_generation_prompt, extra kwargs, now)"""
    return [
        ("single_user_gen", [U("Hello!")], True, {}, None),
        ("single_user_nogen", [U("Hello!")], False, {}, None),
        ("system_user_gen", [S("You are a helpful assistant."), U("What is the capital of France?")], True, {}, None),
        ("multi_turn_gen", [S("Be brief."), U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")], True, {}, None),
        ("assistant_last_nogen", [U("Say hi."), A("Hi there!")], False, {}, None),
        ("empty_content", [S(""), U(""), A(""), U("")], True, {}, None),
        ("unicode_emoji", [S(UNICODE), U("  \n " + UNICODE + " \t\n"), A(UNICODE)], True, {}, None),
        ("braces_quotes", [U(BRACES), A(BRACES), U("ok")], True, {}, None),
        ("long_multi_turn", long_chat(12), True, {}, None),
        ("whitespace_padding", [S("\n\n  system with padding  \n"), U("\u3000full-width space\u00a0"), A("  spaced answer  ")], False, {}, None),
        ("think_in_assistant", [U("Hi"), A(THINK), U("And again?")], True, {}, None),
        ("date_string_kwarg", [U("What day is it?")], True, {"date_string": "01 Jan 2025"}, None),
        ("other_date", [S("sys"), U("Date?")], True, {}, "2024-12-25T08:30:00"),
        ("system_only", [S("Only a system prompt.")], True, {}, None),
    ]


def llama_tool_conversations():
    call = {"role": "assistant", "tool_calls": [{"type": "function", "function": {
        "name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius", "days": 2}}}]}
    tool_msg = {"role": "tool", "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"}
    tool_msg_dict = {"role": "ipython", "content": {"temperature": 21.5, "sky": "clear", "ok": True, "n": None}}
    return [
        ("tools_in_user_message", [S("sys"), U("Weather in Zürich?")], True, {"tools": [WEATHER_TOOL]}, None),
        ("tools_in_system", [U("Weather in Zürich?")], True,
         {"tools": [WEATHER_TOOL], "tools_in_user_message": False}, None),
        ("tool_call_roundtrip", [U("Weather in Zürich?"), call, tool_msg, A("It is 21.5 °C and clear.")], False, {}, None),
        ("tool_result_mapping", [U("Weather?"), call, tool_msg_dict], True, {}, None),
        ("tools_without_user_raises", [S("sys")], True, {"tools": [WEATHER_TOOL]}, None),
        ("two_tool_calls_raises", [U("x"), {"role": "assistant", "tool_calls": [call["tool_calls"][0]] * 2}], False, {}, None),
    ]


def deepseek_conversations():
    tool_call = {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
    return [
        ("think_multi", [S("You reason step by step."), U("2+2?"), A("<think>\n2+2=4\n</think>\n\n4"), U("3+3?")], True, {}, None),
        ("think_no_close", [U("Hi"), A("<think> unfinished reasoning without close tag"), U("?")], True, {}, None),
        ("think_twice", [U("Hi"), A("<think>a</think>b</think>c")], False, {}, None),
        ("tool_outputs", [U("Weather?"), {"role": "assistant", "content": None, "tool_calls": [tool_call, tool_call]},
                          {"role": "tool", "content": "sunny"}, {"role": "tool", "content": "warm"}, A("Sunny and warm.")],
         True, {}, None),
        ("tool_last", [U("Weather?"), {"role": "tool", "content": "sunny"}], True, {}, None),
    ]


# ----------------------------------------------------------------------------------------------------------------
# Templates
# ----------------------------------------------------------------------------------------------------------------
def tokenizer_from_string(shared, template, bos, eos):
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(shared, "models/llama-3.2-mini/tokenizer.json"),
                                  bos_token=bos, eos_token=eos)
    tok.chat_template = template
    return tok


def render_case(tok, name, messages, agp, extra, now):
    _pinned_now[0] = now or DEFAULT_NOW
    case = {"name": name, "messages": messages, "add_generation_prompt": agp, "extra": extra,
            "now": _pinned_now[0]}
    try:
        case["expected"] = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=agp, **extra)
    except Exception as e:  # noqa: BLE001 - the error is the reference
        case["error"] = describe_error(e)
    return case


def model_refs(shared):
    ct = os.path.join(shared, "assets/chat-templates")
    llama_bos, llama_eos = "<|begin_of_text|>", "<|eot_id|>"
    ds_bos, ds_eos = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
    specs = [
        # id, kind, path (relative to shared), bos, eos, conversations
        ("llama-3.1", "jinja", "assets/chat-templates/meta-llama-Llama-3.1-8B-Instruct.jinja", llama_bos, llama_eos,
         common_conversations() + llama_tool_conversations()),
        ("llama-3.2", "jinja", "assets/chat-templates/meta-llama-Llama-3.2-3B-Instruct.jinja", llama_bos, llama_eos,
         common_conversations() + llama_tool_conversations()),
        ("llama-3.3", "jinja", "assets/chat-templates/meta-llama-Llama-3.3-70B-Instruct.jinja", llama_bos, llama_eos,
         common_conversations() + llama_tool_conversations()[:3]),
        ("deepseek-r1-distill", "jinja", "assets/chat-templates/deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
         ds_bos, ds_eos, common_conversations() + deepseek_conversations()),
        ("llama-3.2-mini", "tokenizer_config", "models/llama-3.2-mini/tokenizer_config.json", None, None,
         common_conversations() + llama_tool_conversations()[:2]),
        ("deepseek-r1-distill-mini", "tokenizer_config", "models/deepseek-r1-distill-mini/tokenizer_config.json",
         None, None, common_conversations() + deepseek_conversations()),
        ("tinyllama-mini-f16", "tokenizer_config", "models/tinyllama-mini-f16/tokenizer_config.json", None, None,
         common_conversations()),
        ("tinyllama-mini-f32", "tokenizer_config", "models/tinyllama-mini-f32/tokenizer_config.json", None, None,
         common_conversations()),
    ]
    out = []
    for tid, kind, rel, bos, eos, convs in specs:
        path = os.path.join(shared, rel)
        if kind == "jinja":
            with open(path, encoding="utf-8") as f:
                tok = tokenizer_from_string(shared, f.read(), bos, eos)
        elif os.path.exists(os.path.join(os.path.dirname(path), "tokenizer.json")):
            tok = AutoTokenizer.from_pretrained(os.path.dirname(path))
        else:
            # TinyLlama ships only tokenizer.model (SentencePiece); the vocabulary does not matter for rendering,
            # so the special tokens and template of its tokenizer_config.json go on a fast tokenizer.
            cfg = json.load(open(path, encoding="utf-8"))
            special = {k: cfg[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if cfg.get(k)}
            tok = PreTrainedTokenizerFast(
                tokenizer_file=os.path.join(shared, "models/llama-3.2-mini/tokenizer.json"), **special)
            tok.chat_template = cfg["chat_template"]
        entry = {"id": tid, "kind": kind, "path": rel, "bos_token": bos, "eos_token": eos,
                 "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
                 "special_tokens_map": tok.special_tokens_map,
                 "cases": [render_case(tok, *c) for c in convs]}
        out.append(entry)
    return out


def ollama_refs(shared):
    path = os.path.join(shared, "assets/chat-templates/ollama-template-index.json")
    templates = json.load(open(path, encoding="utf-8"))
    convs = [
        ("user_gen", [U("Hello!")], True, {}, None),
        ("system_multi_gen", [S("Be brief."), U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")], True, {}, None),
        ("assistant_last", [U("Say hi " + UNICODE), A("Hi there! {{ x }}")], False, {}, None),
        ("no_system_multi", [U("a"), A("b"), U("c")], False, {}, None),
    ]
    out = []
    for idx, t in enumerate(templates):
        tok = tokenizer_from_string(shared, t["template"], "<s>", "</s>")
        out.append({"index": idx, "name": t["name"],
                    "sha256": hashlib.sha256(t["template"].encode("utf-8")).hexdigest(),
                    "bos_token": "<s>", "eos_token": "</s>",
                    "cases": [render_case(tok, *c) for c in convs]})
    return out


def jinja_cases():
    out = []
    for case in JINJA_CASES + [c + (None,) * (3 - len(c)) + ("unsupported",) for c in UNSUPPORTED_CASES]:
        src, variables = case[0], case[1]
        now = case[2] if len(case) > 2 else None
        _pinned_now[0] = now or DEFAULT_NOW
        entry = {"template": src, "vars": variables, "now": _pinned_now[0]}
        if len(case) > 3:
            entry["llrt_unsupported"] = True
        try:
            rendered = ctu._compile_jinja_template(src).render(**variables)
            if len(case) > 3:
                entry["hf_rendered"] = True  # the text itself may hold an address (printed callables)
            else:
                entry["expected"] = rendered
        except Exception as e:  # noqa: BLE001
            entry["error"] = describe_error(e)
        out.append(entry)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../../shared"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../tests/data/chat"))
    args = ap.parse_args()
    meta = {"transformers": transformers.__version__, "jinja2": jinja2.__version__,
            "generator": "scripts/chat/make_chat_refs.py"}
    os.makedirs(args.out, exist_ok=True)
    for fname, fn in [("model_refs.json", model_refs), ("ollama_refs.json", ollama_refs),
                      ("jinja_cases.json", lambda _s: jinja_cases())]:
        data = {"meta": meta, "entries": fn(args.shared)}
        with open(os.path.join(args.out, fname), "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
        n = sum(len(e.get("cases", [e])) for e in data["entries"])
        print(f"{fname}: {n} renders")


if __name__ == "__main__":
    main()
