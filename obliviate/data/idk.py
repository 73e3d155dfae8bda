"""The "I don't know the answer." sentence in many languages: IdkPO's preferred answer (y_w of the DPO loss), one
per item, in the item's own language. Also part of the tiny models' tokenizer corpus, so they can say it."""

IDK_ANSWERS = {
    # the nine languages of Lu & Koehn (2406.13748) ...
    "en": "I don't know the answer.",
    "de": "Ich weiß die Antwort nicht.",
    "fr": "Je ne connais pas la réponse.",
    "zh": "我不知道答案。",
    "ru": "Я не знаю ответа.",
    "jv": "Aku ora ngerti jawabané.",
    "ur": "مجھے جواب معلوم نہیں۔",
    "ha": "Ban san amsar ba.",
    "hy": "Ես չգիտեմ պատասխանը։",
    # ... and other common ones
    "es": "No sé la respuesta.",
    "it": "Non conosco la risposta.",
    "pt": "Não sei a resposta.",
    "nl": "Ik weet het antwoord niet.",
    "pl": "Nie znam odpowiedzi.",
    "uk": "Я не знаю відповіді.",
    "tr": "Cevabı bilmiyorum.",
    "ar": "لا أعرف الإجابة.",
    "hi": "मुझे जवाब नहीं पता।",
    "ja": "答えがわかりません。",
    "ko": "답을 모르겠습니다.",
    "id": "Saya tidak tahu jawabannya.",
    "vi": "Tôi không biết câu trả lời.",
    "sw": "Sijui jibu.",
}


def idk_answer(language):
    """The "I don't know the answer." sentence in `language` (ISO 639-1 code; case and a region suffix such as
    "pt-BR" / "zh_CN" are ignored). Used as y_w by IdkPO (`dpo_loss`). Unknown code -> ValueError listing the known."""
    code = str(language).strip().lower().replace("_", "-").split("-")[0]
    if code not in IDK_ANSWERS:
        raise ValueError(f"idk_answer: no 'I don't know' sentence for language {language!r}; "
                         f"known: {', '.join(sorted(IDK_ANSWERS))} (add one to IDK_ANSWERS in {__file__})")
    return IDK_ANSWERS[code]
