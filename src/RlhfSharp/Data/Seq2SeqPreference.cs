namespace RlhfSharp.Data;

/// <summary>A preference pair for an encoder-decoder: the prompt goes to the encoder, chosen and rejected to the
/// decoder (TRL <c>is_encoder_decoder</c>: <c>prompt_input_ids</c>, <c>chosen_labels</c>, <c>rejected_labels</c>).</summary>
public sealed record Seq2SeqPreference(int[] PromptIds, int[] ChosenIds, int[] RejectedIds);
