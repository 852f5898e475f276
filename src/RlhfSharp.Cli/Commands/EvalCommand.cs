using System.CommandLine;
using System.Diagnostics;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Evaluation;
using RlhfSharp.Generation;
using RlhfSharp.Reporting;
using RlhfSharp.Rewards;
using RlhfSharp.Tokenization;
using Spectre.Console;
using static TorchSharp.torch;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>rlhf eval</c>: sample one completion per prompt and compute the RL4LMs metric suite that needs no neural
/// scorer: diversity (distinct-1/2, self-BLEU), perplexity, and, when the data has references
/// (<c>completion</c> or <c>reference</c> field), sacreBLEU, chrF, TER, ROUGE-1/2/L/Lsum and METEOR; plus mean reward and
/// win rate over the references with <c>--reward</c>, KL to <c>--reference-model</c>, and with both the win rate
/// against the reference model's own samples.
/// </summary>
public static class EvalCommand
{
    const int BatchSize = 16;

    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Policy to evaluate: HF folder, llama2.c .bin, or built-in name (stories260k).", DefaultValueFactory = _ => "stories260k" };
        var data = new Option<string>("--data") { Description = "Prompts (jsonl/json/csv/parquet); a 'completion' or 'reference' field enables reference-based metrics.", Required = true };
        var referenceModel = new Option<string?>("--reference-model") { Description = "Model to measure KL(policy ‖ reference) against, on the policy's samples." };
        var reward = new Option<string?>("--reward") { Description = "Judge for mean reward and win rate over the references: vader, afinn, rm:PATH (a reward model folder) or prm:PATH[:min|product|last] (a process reward model, step scores aggregated)." };
        var samples = new Option<int>("--samples") { Description = "Evaluate the first N prompts (0 = all).", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out", "-o") { Description = "Folder for metrics.json, samples.jsonl and report.html.", DefaultValueFactory = _ => "eval" };
        var fields = new Option<string[]>("--field")
        {
            Description = "Read a field from another column: prompt=question, reference=answer (also completion, messages; repeatable).",
            AllowMultipleArgumentsPerToken = false,
        };
        var dtype = DtypeOption.Create();
        var referenceDtype = new Option<string?>("--reference-dtype")
        {
            Description = $"Hold the frozen --reference-model in this type ({RlhfSharp.Models.ModelDtype.Names}; default: --dtype's): bf16 halves its memory, and the KL is still computed in float32.",
        };
        var prm = new Option<string?>("--prm") { Description = "Evaluate this process reward model on --data with step labels (prompt, completions, labels): step accuracy, and best-of-n aggregation." };
        var rewardModel = new Option<string?>("--reward-model") { Description = "Evaluate this reward model on --data (preferences or rankings) instead of a policy: the same as rlhf eval-rm." };
        // eval-rm's own options, so --reward-model takes everything eval-rm does (they were fixed at 10 bins and 512 tokens).
        var (_, _, bins, maxLength) = EvalRmCommand.Options();
        bins.Description = "With --reward-model: " + bins.Description;
        maxLength.Description = "With --reward-model: " + maxLength.Description;
        var sampling = new SamplingArguments(defaultSeed: 0);
        var command = new Command("eval", "Generate on a prompt set and compute BLEU, chrF, TER, ROUGE, METEOR, diversity, perplexity, reward, win rate and KL.")
            { model, data, referenceModel, reward, samples, output, fields, dtype, referenceDtype, rewardModel, prm, bins, maxLength };
        sampling.AddTo(command);
        command.SetAction(r => Program.Run(() =>
        {
            if (r.GetValue(prm) is string prmPath)
                return EvalPrmSteps.Run(prmPath, r.GetValue(data)!, r.GetValue(samples), r.GetValue(output)!, DtypeOption.Read(r, dtype));
            if (r.GetValue(rewardModel) is string rmPath)
                return EvalRmCommand.Run(rmPath, r.GetValue(data)!, r.GetValue(samples), r.GetValue(output)!, r.GetValue(bins), r.GetValue(maxLength), DtypeOption.Read(r, dtype));
            var options = sampling.Read(r);
            options.Validate();
            var rowsRead = ReadData(r.GetValue(data)!, r.GetValue(samples), ParseFields(r.GetValue(fields) ?? []));
            var prompts = rowsRead.Select(x => x.Prompt).ToList();
            var type = DtypeOption.Read(r, dtype);
            var refType = r.GetValue(referenceDtype) is string rd ? RlhfSharp.Models.ModelDtype.Parse(rd, "--reference-dtype") : type;
            var judge = Judge(r.GetValue(reward), type);
            // An encoder-decoder (T5) answers the prompts with its decoder; perplexity is of the output given the prompt.
            bool seq2seq = PretrainedSeq2SeqModel.IsSeq2Seq(r.GetValue(model)!);
            // A T5 policy's reference is a T5 too: the KL compares the two decoders' log-probs of the same tokens.
            if (seq2seq && r.GetValue(referenceModel) is string t5Ref && !PretrainedSeq2SeqModel.IsSeq2Seq(t5Ref))
                throw new RlhfException($"--reference-model {t5Ref}: the policy is an encoder-decoder (T5), so the reference must be a T5 folder with the same tokenizer.");
            using var t5 = seq2seq ? PretrainedSeq2SeqModel.Load(r.GetValue(model)!, type) : null;
            using var t5Reference = seq2seq && r.GetValue(referenceModel) is string rs ? PretrainedSeq2SeqModel.Load(rs, refType) : null;
            // ILQL heads beside a T5 decode with it, as PretrainedModel.Load attaches them to a decoder-only model.
            if (t5 is not null) IlqlHeadsFile.AttachIfPresent(t5.Model, t5.Path);
            if (t5Reference is not null) IlqlHeadsFile.AttachIfPresent(t5Reference.Model, t5Reference.Path);
            if (t5 is not null && t5Reference is not null && t5Reference.Model.Config.VocabSize != t5.Model.Config.VocabSize)
                throw new RlhfException($"--reference-model {t5Reference.Path}: vocab_size {t5Reference.Model.Config.VocabSize}, the policy's is {t5.Model.Config.VocabSize}: the KL needs one vocabulary.");
            using var policy = seq2seq ? null : PretrainedModel.Load(r.GetValue(model)!, type, kvCache: (BatchSize, options.MaxNewTokens));
            using var refModel = !seq2seq && r.GetValue(referenceModel) is string rp ? PretrainedModel.Load(rp, refType) : null;
            Func<List<string>, List<string>, double> perplexity = t5 is not null
                ? (ps, cs) => Seq2SeqPerplexity.Compute(t5, ps, cs).Perplexity
                : (ps, cs) => Perplexity.Compute(policy!.Model, policy.Tokenizer, cs.Select((c, i) => ps[i] + c).ToList()).Perplexity;
            var clock = Stopwatch.StartNew();

            var (completions, lengths, kl) = t5 is not null ? GenerateSeq2Seq(t5, t5Reference, prompts, options) : Generate(policy!, refModel, prompts, options);
            var metrics = new Dictionary<string, double>
            {
                ["samples"] = prompts.Count,
                ["mean_length_tokens"] = lengths.Average(),
                ["distinct_1"] = Distinct.N(completions, 1),
                ["distinct_2"] = Distinct.N(completions, 2),
                ["self_bleu"] = SelfBleu.Score(completions),
                ["perplexity_samples"] = perplexity(prompts, completions),
            };
            if (kl is not null) metrics["kl_to_reference"] = kl.Average();
            double[]? rewards = judge?.Score(prompts, completions);
            if (rewards is not null) metrics["reward_mean"] = rewards.Average();
            if (rewards is not null && (refModel is not null || t5Reference is not null))
            {
                // Head to head: the reference model answers the same prompts with the same sampling, the judge picks.
                var (refCompletions, _, _) = t5Reference is not null ? GenerateSeq2Seq(t5Reference, null, prompts, options) : Generate(refModel!, null, prompts, options);
                metrics["win_rate_vs_reference_model"] = WinRate.FromScores(rewards, judge!.Score(prompts, refCompletions)).Rate;
            }
            // Reference metrics over the rows that have a reference; the others are counted, not silently dropped (issue 15).
            var withReference = Enumerable.Range(0, prompts.Count).Where(i => rowsRead[i].Reference is not null).ToList();
            int withoutReference = prompts.Count - withReference.Count;
            if (withReference.Count > 0)
            {
                var refCompletions = withReference.Select(i => completions[i]).ToList();
                var references = withReference.Select(i => rowsRead[i].Reference!).ToList();
                var refPrompts = withReference.Select(i => prompts[i]).ToList();
                var refSets = references.Select(x => (IReadOnlyList<string>)[x]).ToList();
                metrics["reference_rows"] = withReference.Count;
                metrics["bleu"] = SacreBleu.Corpus(refCompletions, refSets).Score;
                metrics["chrf"] = ChrF.Corpus(refCompletions, refSets);
                metrics["ter"] = Ter.Corpus(refCompletions, refSets).Score;
                var pairs = refCompletions.Zip(references).ToList();
                metrics["rouge1"] = pairs.Average(p => Rouge.N(p.Second, p.First, 1).FMeasure);
                metrics["rouge2"] = pairs.Average(p => Rouge.N(p.Second, p.First, 2).FMeasure);
                metrics["rougeL"] = pairs.Average(p => Rouge.L(p.Second, p.First).FMeasure);
                metrics["rougeLsum"] = pairs.Average(p => Rouge.Lsum(p.Second, p.First).FMeasure);
                metrics["meteor"] = pairs.Average(p => Meteor.Score([p.Second], p.First));
                metrics["perplexity_references"] = perplexity(refPrompts, references);
                if (judge is not null)
                    metrics["win_rate_vs_reference"] = WinRate.FromScores(withReference.Select(i => rewards![i]).ToArray(), judge.Score(refPrompts, references)).Rate;
                if (withoutReference > 0)
                {
                    metrics["rows_without_reference"] = withoutReference;
                    Console.Error.WriteLine($"note: {withoutReference} of {prompts.Count} rows have no reference: BLEU, chrF, TER, ROUGE, METEOR and the win rate over references score the other {withReference.Count}.");
                }
            }
            metrics["seconds"] = clock.Elapsed.TotalSeconds;

            string dir = r.GetValue(output)!;
            MetricsReport.WriteJson(dir, metrics);
            var rows = prompts.Select((p, i) => new EvaluatedSample(p, completions[i], rowsRead[i].Reference, rewards?[i])).ToList();
            WriteSamples(Path.Combine(dir, "samples.jsonl"), rows);
            MetricsReport.WriteHtml(dir, $"rlhf eval: {r.GetValue(model)} on {Path.GetFileName(r.GetValue(data))}", metrics, rows);

            var table = new Table().AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
            foreach (var (k, v) in metrics) table.AddRow(Markup.Escape(k), v.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            Console.WriteLine($"wrote {Path.Combine(dir, "metrics.json")} and report.html");
            return 0;
        }));
        return command;
    }

    /// <summary>Prompt/completion (or prompt/reference) rows give references; rows without one are kept with none.</summary>
    static List<EvalPrompt> ReadData(string path, int limit, FieldMap fields)
    {
        path = RlhfSharp.Hub.HubResolver.FromEnvironment().ResolveFile(path); // hf://datasets/...: the cached copy
        if (!File.Exists(path)) throw new RlhfException($"{path}: file not found.");
        var rows = DatasetLoader.LoadEvalPrompts(path, fields).Records;
        if (rows.Count == 0) throw new RlhfException($"{path}: no prompts in the file.");
        return limit > 0 ? rows.Take(limit).ToList() : rows.ToList();
    }

    /// <summary><c>--field prompt=question</c> → a <see cref="FieldMap"/>; <c>reference</c> names the column read as the completion.</summary>
    internal static FieldMap ParseFields(IEnumerable<string> specs)
    {
        var map = new FieldMap();
        foreach (var spec in specs)
        {
            int eq = spec.IndexOf('=');
            string field = eq > 0 ? spec[..eq].Trim() : "", column = eq > 0 ? spec[(eq + 1)..].Trim() : "";
            if (field.Length == 0 || column.Length == 0) throw new RlhfException($"--field '{spec}': expected FIELD=COLUMN, e.g. --field prompt=question.");
            map = field switch
            {
                "prompt" => map with { PromptField = column },
                "completion" or "reference" => map with { CompletionField = column },
                "messages" => map with { MessagesField = column },
                "chosen" => map with { ChosenField = column },
                "rejected" => map with { RejectedField = column },
                _ => throw new RlhfException($"--field '{spec}': '{field}' is not a field rlhf eval reads; use prompt, reference (or completion), messages, chosen or rejected."),
            };
        }
        return map;
    }

    static IRewardFunction? Judge(string? spec, ScalarType dtype) => spec switch
    {
        null => null,
        "vader" => LexiconReward.VaderCompound(),
        "afinn" => LexiconReward.AfinnSum(),
        // A T5 reward model (rlhf rm on a T5 folder) scores the text prompt + completion with its own tokenizer, as the online stages' rm term does.
        _ when spec.StartsWith("rm:", StringComparison.Ordinal) && Directory.Exists(spec[3..]) && PretrainedSeq2SeqModel.IsSeq2Seq(spec[3..]) => Seq2SeqRewardModelReward.Load(spec[3..], dtype),
        _ when spec.StartsWith("rm:", StringComparison.Ordinal) => new ScoreModelReward(
            HuggingFaceCheckpoint.LoadScoreModel(spec[3..], dtype), TokenizerLoader.Load(spec[3..])),
        _ when spec.StartsWith("prm:", StringComparison.Ordinal) => ProcessJudge(spec[4..], dtype),
        _ => throw new RlhfException($"--reward: '{spec}' is not vader, afinn, rm:PATH or prm:PATH[:min|product|last]."),
    };

    /// <summary>A process reward model as the judge: <c>prm:PATH</c> (min over steps) or <c>prm:PATH:product|last|min</c>.</summary>
    static ProcessRewardModel ProcessJudge(string spec, ScalarType dtype)
    {
        var aggregation = StepAggregation.Min;
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && Enum.TryParse<StepAggregation>(spec[(colon + 1)..], ignoreCase: true, out var a)) { aggregation = a; spec = spec[..colon]; }
        // A misspelt aggregation would otherwise surface as "folder not found" for PATH:typo.
        else if (colon > 0 && !Directory.Exists(spec) && !spec[(colon + 1)..].Contains('/'))
            throw new RlhfException($"--reward prm:{spec}: '{spec[(colon + 1)..]}' is not a step aggregation; use min, product or last.");
        return ProcessRewardModel.Load(spec, aggregation, dtype);
    }

    /// <summary>Samples in batches; with a reference model also the per-sample KL on the same batch.</summary>
    static (List<string> Texts, List<double> Lengths, List<double>? Kl) Generate(PretrainedModel policy, PretrainedModel? reference, List<string> prompts, SamplingOptions options)
    {
        var sampler = new Sampler(policy.Model, policy.Tokenizer);
        var texts = new List<string>();
        var lengths = new List<double>();
        var kl = reference is null ? null : new List<double>();
        var ids = prompts.Select(policy.EncodePrompt).ToList();
        for (int start = 0; start < ids.Count; start += BatchSize)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var chunk = ids.Skip(start).Take(BatchSize).ToList();
            var (promptIds, mask) = sampler.LeftPad(chunk);
            using var batch = sampler.Sample(promptIds, mask, options with { Seed = options.Seed + (ulong)start });
            texts.AddRange(batch.NewTokens.Select(t => Sampler.CutAtStop(policy.Tokenizer.Decode(t), options.StopStrings)));
            lengths.AddRange(batch.NewTokens.Select(t => (double)t.Length));
            if (reference is not null) kl!.AddRange(KlToReference.PerSampleValues(policy.Model, reference.Model, batch));
        }
        return (texts, lengths, kl);
    }

    /// <summary>
    /// Samples an encoder-decoder in batches: the prompt (with EOS) to the encoder, the output from the decoder; with a
    /// reference model also the per-sample KL on the same batch (the sampler's rollout rows, the same tokens Generate draws).
    /// </summary>
    static (List<string> Texts, List<double> Lengths, List<double>? Kl) GenerateSeq2Seq(PretrainedSeq2SeqModel policy, PretrainedSeq2SeqModel? reference,
        List<string> prompts, SamplingOptions options)
    {
        var sampler = new Seq2SeqSampler(policy.Model, policy.Tokenizer);
        var texts = new List<string>();
        var lengths = new List<double>();
        var kl = reference is null ? null : new List<double>();
        var ids = prompts.Select(policy.EncodePrompt).ToList();
        for (int start = 0; start < ids.Count; start += BatchSize)
        {
            var chunk = ids.Skip(start).Take(BatchSize).ToList();
            var chunkOptions = options with { Seed = options.Seed + (ulong)start };
            if (reference is null)
            {
                var done = sampler.Generate(chunk, chunkOptions);
                texts.AddRange(done.Select(c => c.Text));
                lengths.AddRange(done.Select(c => (double)c.NewIds.Length));
                continue;
            }
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            using var batch = sampler.Rollouts(chunk, chunkOptions);
            texts.AddRange(batch.NewTokens.Select(t => Sampler.CutAtStop(policy.Tokenizer.Decode(t), options.StopStrings)));
            lengths.AddRange(batch.NewTokens.Select(t => (double)t.Length));
            kl!.AddRange(KlToReference.PerSampleValues(policy.Model, reference.Model, batch));
        }
        return (texts, lengths, kl);
    }

    static void WriteSamples(string path, List<EvaluatedSample> rows)
    {
        var json = new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllLines(path, rows.Select(s => System.Text.Json.JsonSerializer.Serialize(
            new { prompt = s.Prompt, completion = s.Completion, reference = s.Reference, reward = s.Reward }, json)));
    }
}
