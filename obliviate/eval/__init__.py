"""Evaluation: probe a base model and its adapters, score the answers, aggregate them into the papers' views.

    evaluate.py      Evaluator: the API (probe files in, EvalResult out)    options.py   EvalOptions
    backend.py       Request, Generation, what the backends share           rows.py      ProbeRow, EvalMeta
    backend_hf.py    transformers generation (and the models scoring uses)  results.py   EvalResult, results.json
    backend_vllm.py  vLLM multi-LoRA generation, merged-base caches         views.py     rows -> Table
    choice.py        multiple-choice prompt and parser                      report.py    the HTML report
    text_metrics.py  answer vs reference: matching, ROUGE, BLEU, fake-rate  scoring.py   log-prob scores of answers
    score_metrics.py truth ratio, forget quality (KS), MIA scores, AUC
"""
