using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// Gradient checkpointing per decoder layer (a stage's <c>gradient_checkpointing</c>, HF <c>TrainingArguments</c>'
/// switch of the same name): the forward of a layer keeps only its input, and the backward runs the layer again from
/// that input, with gradients on, to differentiate it. Activation memory of a training forward falls from every
/// layer's intermediates (attention scores, MLP activations, norms: tens of (B, T, hidden) tensors per layer) to one
/// (B, T, hidden) tensor per layer plus one layer's intermediates at a time, for about one more forward of compute.
/// </summary>
/// <remarks>
/// This is <c>torch.utils.checkpoint.checkpoint</c> with <c>use_reentrant=True</c> (torch/utils/checkpoint.py,
/// <c>CheckpointFunction</c>), which transformers v4.44 passes by default from <c>gradient_checkpointing_enable</c>
/// (modeling_utils.py) and calls once per decoder layer (e.g. <c>LlamaModel.forward</c>): a custom autograd function
/// whose forward runs the layer without a graph, and whose backward recomputes the layer and calls a nested backward on
/// it, which accumulates the layer's parameter gradients into their <c>.grad</c> and hands the input's gradient on.
/// <para>Two of its details kept here: <c>preserve_rng_state</c> — the global generator's state before the forward is
/// saved and put back for the recomputation, then the state of the moment restored, so a layer with dropout (the model's own, <see cref="Dropouts"/>, or LoRA's
/// <c>lora_dropout</c>) draws the same masks again and the generator ends where it would without checkpointing; and the
/// layer's trainable parameters are inputs of the function, so its output needs a gradient even when its input does not
/// (under LoRA the embeddings are frozen: transformers needs <c>enable_input_require_grads</c> for that case).</para>
/// <para>What the backward recomputes must be what the forward computed: the layer's train/eval mode is restored for the
/// recomputation; LoRA adapters switched off (<see cref="Lora.LoraModel.AdaptersOff"/>) are only ever used without
/// gradients, so no checkpoint is taken there. Like the reentrant variant, it does not support
/// <c>torch.autograd.grad</c> on the outer graph (the parameter gradients go to <c>.grad</c>); no trainer uses it.</para>
/// </remarks>
public static class LayerCheckpoint
{
    /// <summary>
    /// Turns checkpointing on for every decoder body in <paramref name="model"/> (a <see cref="CausalLM"/>,
    /// <see cref="ScoreModel"/>, …). Refuses, naming <paramref name="key"/>, a model with no decoder layers to checkpoint
    /// (an encoder-decoder T5) and a mixture-of-experts body, whose router logits must leave the layer with a graph for
    /// the load-balancing loss.
    /// </summary>
    public static void Enable(nn.Module model, string key)
    {
        var bodies = model is DecoderBody self ? [self] : model.modules().OfType<DecoderBody>().ToList();
        if (bodies.Count == 0)
            throw new RlhfException($"{key}: gradient checkpointing runs per decoder layer of a decoder-only model; this model ({model.GetName()}, e.g. an encoder-decoder T5) is not supported yet: set it false.");
        foreach (var body in bodies)
        {
            if (body.Router is not null)
                throw new RlhfException($"{key}: a mixture-of-experts model's router logits leave its layers for the load-balancing loss, which a checkpointed layer does not keep yet: set it false.");
            body.CheckpointLayers = true;
        }
    }

    /// <summary>
    /// <paramref name="forward"/> of <paramref name="layer"/> at <paramref name="x"/> and <paramref name="constants"/>
    /// (rotary angles, masks: tensors without gradients; null entries allowed), keeping only <paramref name="x"/>, the
    /// constants and the generator's state for the backward. <paramref name="forward"/> must read every tensor it needs
    /// from its arguments, not from its closure: a trainer may end the dispose scope of the forward before the backward.
    /// </summary>
    public static Tensor Run(nn.Module layer, Tensor x, Tensor?[] constants, Func<Tensor, Tensor?[], Tensor> forward)
    {
        // torch.utils.checkpoint also replays the CUDA generator (preserve_rng_state); TorchSharp exposes only the CPU
        // one, so on another device a dropout mask could differ in the recomputation: refuse rather than train wrong.
        if (x.device_type != DeviceType.CPU)
            throw new RlhfException($"gradient_checkpointing replays the CPU random generator only, and this layer runs on {x.device}: turn gradient_checkpointing off there.");
        ReleaseReturned();
        var trainable = layer.parameters().Where(p => p.requires_grad).ToArray();
        var vars = new object[trainable.Length + 3];
        vars[0] = x;
        for (int i = 0; i < trainable.Length; i++) vars[i + 1] = trainable[i];
        vars[^2] = constants;
        vars[^1] = new Pass(layer, forward, trainable, layer.training);
        return Function.apply(vars)[0];
    }

    sealed record Pass(nn.Module Layer, Func<Tensor, Tensor?[], Tensor> Forward, Tensor[] Trainable, bool Training);

    // The input gradients handed back to LibTorch: the engine holds its own reference once the backward returns, so the
    // managed handle only has to outlive that return. Released at the next backward (or forward) instead of at the end of
    // the step's dispose scope, where one (B, T, hidden) tensor per layer would wait.
    [ThreadStatic] static List<Tensor>? returned;

    static void ReleaseReturned()
    {
        if (returned is null) return;
        foreach (var t in returned) t.Dispose();
        returned.Clear();
    }

    sealed class Function : torch.autograd.MultiTensorFunction<Function>
    {
        public override string Name => nameof(LayerCheckpoint);

        // vars: x, the layer's trainable parameters, the constants, the Pass. Runs without a graph (apply turns gradients off).
        public override List<Tensor> forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, constants, pass) = ((Tensor)vars[0], (Tensor?[])vars[^2], (Pass)vars[^1]);
            var rng = torch.random.get_rng_state();
            Tensor y;
            // The layer's intermediates are dropped now, not at the end of the step's dispose scope.
            using (var scope = NewDisposeScope()) y = pass.Forward(x, constants).MoveToOuterDisposeScope();
            // Saved variables hold their own references: the tensors outlive the forward's dispose scope until the backward.
            ctx.save_for_backward([x, rng, .. constants.Select(c => c!)]);
            ctx.save_data("pass", pass);
            ctx.save_data("count", vars.Length);
            return [y];
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, List<Tensor> grads)
        {
            ReleaseReturned();
            var pass = (Pass)ctx.get_data("pass");
            int count = (int)ctx.get_data("count");
            Tensor? gx = null;
            bool wasTraining = pass.Layer.training;
            using (var scope = NewDisposeScope())
            {
                var saved = ctx.get_saved_variables();
                var (x, rng) = (saved[0], saved[1]);
                var constants = saved.Skip(2).Select(c => c is null || c.IsInvalid ? null : c).ToArray();
                var now = torch.random.get_rng_state();
                torch.random.set_rng_state(rng);
                if (wasTraining != pass.Training) pass.Layer.train(pass.Training);
                try
                {
                    using var _ = enable_grad();
                    var input = x.detach().requires_grad_(x.requires_grad);
                    var y = pass.Forward(input, constants);
                    var leaves = x.requires_grad ? [input, .. pass.Trainable] : pass.Trainable.ToList();
                    torch.autograd.backward([y], [grads[0]], inputs: leaves);
                    if (x.requires_grad) gx = input.grad!.DetachFromDisposeScope();
                }
                finally
                {
                    torch.random.set_rng_state(now);
                    if (wasTraining != pass.Training) pass.Layer.train(wasTraining);
                }
            }
            if (gx is not null) (returned ??= []).Add(gx);
            var result = new List<Tensor>(count) { gx! };
            for (int i = 1; i < count; i++) result.Add(null!);
            return result;
        }
    }
}
