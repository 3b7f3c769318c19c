"""Predictions: what a trained run says about any text and why, how it does on the test set, and
which words its embedding puts together."""

import streamlit as st

from rnnkit import charts, evaluation
from rnnkit.config import TrainConfig
from rnnkit.ui import predictions
from rnnkit.ui.loading import load_data
from rnnkit.ui.runs import nearest_words_table, run_model, run_picker
from rnnkit.ui.untrusted import escape_markdown, keep_in_url, number_from_url

EXAMPLE = (
    "I expected a dull remake, but the acting is superb and the story kept me watching. "
    "The ending is a bit weak, still a great film."
)

st.title("Predictions")
run = run_picker(load_data())
config = TrainConfig.from_dict(run.config)
data = load_data(config.data.num_words)
model = run_model(run)

st.header("Your review")
text = st.text_area("Type or paste a review", EXAMPLE, height=140, key="predict_text")
gradient = st.toggle(
    "Gradient × input",
    key="predict_gradient",
    help="Off: occlusion, the change in probability when a word is replaced by <UNK>. On: "
    "gradient × input at the embedding, summed over its dimensions (one backward pass).",
)
try:
    reading = predictions.read_text(
        run, model, data.vocab, text, "gradient" if gradient else "occlusion"
    )
except ValueError as error:
    st.info(f"No prediction: {escape_markdown(error)}.")
    reading = None
if reading is not None:
    if reading.encoded.note:
        st.warning(escape_markdown(reading.encoded.note))
    predictions.chance_warning(run)
    label = "positive" if reading.probability > 0.5 else "negative"
    columns = st.columns(3)
    columns[0].metric("Probability of positive", evaluation.probability_text(reading.probability))
    columns[1].metric("Label", label)
    columns[2].metric("Words read", f"{len(reading.contributions):,}")
    predictions.highlighted_contributions(reading.contributions)
    st.subheader("The review as the model reads it")
    st.altair_chart(charts.prefix_predictions(reading.prefixes), key="predict_prefix_chart")
    st.caption(predictions.reading_caption(config))

st.header("The test set")
report = predictions.run_report(run, data)
number_from_url("predict_threshold", 0.0, 1.0, 0.5, "float")
threshold = st.slider(
    "Threshold",
    0.0,
    1.0,
    step=0.01,
    key="predict_threshold",
    help="A review is called positive when its probability is above the threshold.",
)
keep_in_url("predict_threshold", 0.5)
scores = evaluation.threshold_metrics(run.predictions, data.test.labels, threshold)
shown = {"Accuracy": "accuracy", "Precision": "precision", "Recall": "recall", "F1": "f1"}
for column, (label, name) in zip(st.columns(4), shown.items(), strict=True):
    column.metric(label, f"{scores[name]:.2%}")
left, right = st.columns([3, 2])
left.altair_chart(
    charts.probability_histogram(report.histogram, threshold), key="predict_histogram"
)
right.altair_chart(charts.confusion_matrix(scores), key="predict_confusion")
if report.roc is not None:
    left, right = st.columns(2)
    left.altair_chart(charts.roc(report.roc, report.roc_auc, scores), key="predict_roc")
    right.altair_chart(
        charts.precision_recall(report.precision_recall, report.average_precision, scores),
        key="predict_precision_recall",
    )
st.subheader("Accuracy by review length")
st.altair_chart(charts.accuracy_by_length(report.by_length), key="predict_by_length")
st.caption(
    f"Reviews longer than max_length ({config.data.max_length}) lose words "
    f"(truncating='{config.data.truncating}'); their buckets are orange."
)
st.subheader("The most confident mistakes")
predictions.confident_mistakes(report)

st.header("Nearest words in the trained embedding")
word = st.text_input("Word", "great", key="predict_word", bind="query-params")
nearest_words_table(model, data.vocab, word)
