"""The last lines of pretraining, fine-tuning and export: outputs and next commands."""

import os

from amos_jax import summaries

EVAL = {"eval/rtd_auc": 0.71234, "eval/mlm_accuracy/depth_1": 0.1,
        "eval/mixture_weight/depth_1": 0.3, "eval/mlm_loss/depth_1": 5.0}
# Three generator depths, listed out of order (as a dict may hold them).
AMOS_EVAL = {"eval/rtd_auc": 0.7312, "eval/mlm_unigram_accuracy": 0.0671,
             "eval/mlm_accuracy/depth_3": 0.256, "eval/mlm_accuracy/depth_10": 0.3,
             "eval/mlm_accuracy/depth_2": 0.249, "eval/mixture_weight/depth_10": 0.1,
             "eval/mixture_weight/depth_2": 0.7, "eval/mixture_weight/depth_3": 0.2}


def test_a_finished_pretraining_run_names_its_outputs_and_next_commands():
  text = summaries.pretraining(
      "/runs/amos tiny", start_step=0, step=200, num_train_steps=200, seconds=125.4,
      final_eval=(200, EVAL), checkpoint_step=200, tokenizer_file="tokenizer.model")
  assert text.splitlines() == [
      "Pretraining finished: steps 0->200 of 200 in 2m05s.",
      "  Final eval:  step 200: mlm_accuracy/depth_1 0.1000, rtd_auc 0.7123",
      "  Baselines:   RTD AUC 0.712 (chance: 0.5)",
      "  Checkpoint:  /runs/amos tiny/checkpoints/200",
      "  Metrics:     /runs/amos tiny/metrics.jsonl",
      "  TensorBoard: tensorboard --logdir='/runs/amos tiny/tensorboard'",
      "  Tokenizer:   /runs/amos tiny/tokenizer.model",
      "Next:",
      "  python -m amos_jax.plots --workdir='/runs/amos tiny'",
      "  python -m amos_jax.export --workdir='/runs/amos tiny' --out='/runs/amos tiny_export'",
      "  python -m amos_jax.main --config=configs/glue.py:sst2 "
      "--config.init_checkpoint='/runs/amos tiny' --config.data_dir=/path/to/glue "
      "--workdir='/runs/amos tiny_sst2'",
  ]


def test_the_final_eval_is_read_against_chance_the_unigram_and_the_mixture():
  text = summaries.pretraining(
      "/w", start_step=0, step=1500, num_train_steps=1500, seconds=180,
      final_eval=(1500, AMOS_EVAL), checkpoint_step=1500, tokenizer_file="tokenizer.model")
  lines = text.splitlines()
  assert lines[1].startswith("  Final eval:  step 1500: mlm_accuracy/depth_10 0.3000, ")
  # The deepest generator (10, not 3: depths sort as numbers) against the unigram baseline.
  assert lines[2] == ("  Baselines:   RTD AUC 0.731 (chance: 0.5); depth-10 MLM accuracy 0.300 "
                      "(always the most frequent masked token: 0.067)")
  assert lines[3] == ("  Mixture:     depth 2 0.70, depth 3 0.20, depth 10 0.10 (mean weight of "
                      "each generator depth in the distribution replacements are sampled from; "
                      "1/3 each: no preference)")
  assert lines[4] == "  Checkpoint:  /w/checkpoints/1500"


def test_eval_context_leaves_out_what_the_evaluation_lacks():
  # ELECTRA: one depth, nothing mixed; an evaluation from before the unigram baseline.
  assert summaries.eval_context({"eval/rtd_auc": 0.5, "eval/mlm_accuracy/depth_1": 0.1,
                                 "eval/mixture_weight/depth_1": 1.0}) == [
                                     ("Baselines", "RTD AUC 0.500 (chance: 0.5)")]
  assert summaries.eval_context({"step": 5, "eval/loss": 3.0}) == []


def test_a_stopped_run_says_how_to_resume_and_when_nothing_was_evaluated():
  text = summaries.pretraining(
      "/w", start_step=100, step=150, num_train_steps=200, seconds=3725, final_eval=None,
      checkpoint_step=150, tokenizer_file="tokenizer.model")
  lines = text.splitlines()
  assert lines[0] == ("Pretraining stopped at step 150 of 200 (ran 100->150 in 1h02m05s); run "
                      "the same command again to resume.")
  assert lines[1] == "  Final eval:  none in this run"
  assert lines[2] == "  Checkpoint:  /w/checkpoints/150"


def test_finetuning_names_the_medians_results_and_best_seed():
  def seed(number, accuracy):
    return {"seed": number, "num_train_steps": 8, "checkpoint": f"/ft/seed_{number}/best",
            "best": {"metrics": {"validation": {"accuracy": accuracy}}}}
  results = {"task": "sst2", "primary_metric": "accuracy", "primary_split": "validation",
             "seeds": [seed(0, 0.5), seed(1, 0.75)],
             "median": {"validation": {"accuracy": 0.625}}}
  lines = summaries.finetuning("/ft", results, seconds=61, results_file="results.json"
                               ).splitlines()
  assert lines[:5] == [
      "Fine-tuning sst2 finished: 2 seed(s) x 8 steps in 1m01s.",
      "  Median validation: accuracy 0.6250",
      "  Results:           /ft/results.json",
      "  Best models:       /ft/seed_0/best, /ft/seed_1/best",
      "  Best by accuracy:  seed 1 (/ft/seed_1/best)",
  ]
  assert lines[5] == "Next:"
  assert ("--config.eval_only=True --config.init_checkpoint=/ft/seed_1/best" in lines[6]
          and "--workdir=/ft/eval" in lines[6])
  assert "inference.load('/ft/seed_1/best').predict" in lines[7]


def test_export_lists_its_files_and_how_to_use_them(tmp_path):
  out = str(tmp_path / "export")
  os.makedirs(out)
  for name, size in (("config.json", 1000), ("params.msgpack", 2_500_000)):
    with open(os.path.join(out, name), "wb") as file:
      file.write(b"x" * size)
  lines = summaries.export(out, source="/w", files=["config.json", "params.msgpack"]
                           ).splitlines()
  assert lines[:3] == [f"Exported the encoder to {out}.", "  From:  /w",
                       "  Files: config.json (0.0 MB), params.msgpack (2.5 MB)"]
  assert f"inference.load({out!r}).encode" in lines[4]
  assert f"--config.init_checkpoint={out} " in lines[5]


def test_squad_finetuning_names_its_config_and_answer():
  results = {"task": "squad_v1.1", "primary_metric": "f1", "primary_split": "validation",
             "seeds": [{"seed": 0, "num_train_steps": 4, "checkpoint": "/qa/seed_0/best",
                        "best": {"metrics": {"validation": {"f1": 80.0}}}}],
             "median": {"validation": {"f1": 80.0}}}
  lines = summaries.finetuning("/qa", results, seconds=5, results_file="results.json"
                               ).splitlines()
  assert "--config=configs/squad.py:1.1 --config.eval_only=True" in lines[-2]
  assert "inference.load('/qa/seed_0/best').answer(" in lines[-1]
