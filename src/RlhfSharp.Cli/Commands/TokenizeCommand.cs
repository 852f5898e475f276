using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>rlhf tokenize</c>: the ids, tokens and round-trip text of a model's tokenizer, as HF's
/// <c>tokenizer(text)</c> gives them (added tokens typed in the text become their ids).</summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "HF folder, llama2.c .bin, or built-in name (stories260k).", DefaultValueFactory = _ => "stories260k" };
        var text = new Option<string?>("--text", "-t") { Description = "The text to tokenize." };
        var file = new Option<string?>("--file", "-f") { Description = "A UTF-8 file whose whole content is tokenized." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: ids, tokens, text." };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Do not add BOS or the EOS a T5 tokenizer appends (HF add_special_tokens=False)." };
        var split = new Option<bool>("--split-special-tokens") { Description = "Special-token strings in the text stay plain text (HF split_special_tokens=True)." };
        var command = new Command("tokenize", "Print the token ids, tokens and round-trip text of a model's tokenizer.") { model, text, file, json, noSpecial, split };
        command.SetAction(r => Program.Run(() =>
        {
            if ((r.GetValue(text) is null) == (r.GetValue(file) is null)) throw new RlhfException("give exactly one of --text or --file.");
            string input = r.GetValue(text) ?? ReadFile(r.GetValue(file)!);
            var tokenizer = TokenizerLoader.Load(PretrainedModel.Resolve(r.GetValue(model)!));
            bool addBos = !r.GetValue(noSpecial) && tokenizer is not HfTokenizer { AddBosToken: false };
            var ids = r.GetValue(split) ? tokenizer.Encode(input, addBos) : tokenizer.EncodeWithSpecialTokens(input, addBos);
            // T5/Pegasus append EOS through their post-processor, as HF's tokenizer(text) does.
            if (!r.GetValue(noSpecial) && tokenizer is HfTokenizer { AddEosToken: true, EosId: int eos }) ids = [.. ids, eos];
            var tokens = ids.Select(id => TokenString(tokenizer, id)).ToArray();
            var roundTrip = tokenizer.Decode(ids, skipSpecial: false);
            if (r.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["ids"] = new JsonArray(ids.Select(x => (JsonNode)x).ToArray()),
                    ["tokens"] = new JsonArray(tokens.Select(x => (JsonNode)x).ToArray()),
                    ["text"] = roundTrip,
                };
                Console.WriteLine(o.ToJsonString(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            }
            else
            {
                Console.WriteLine($"ids ({ids.Length}): {string.Join(' ', ids)}");
                Console.WriteLine($"tokens: {string.Join(' ', tokens.Select(t => JsonSerializer.Serialize(t, new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping })))}");
                Console.WriteLine($"text: {roundTrip}");
            }
            return 0;
        }));
        return command;
    }

    static string ReadFile(string path) =>
        File.Exists(path) ? File.ReadAllText(path) : throw new RlhfException($"--file {path}: no such file");

    static string TokenString(ITokenizer tokenizer, int id) => tokenizer switch
    {
        HfTokenizer hf => hf.IdToToken(id),
        Llama2cTokenizer llama2c => llama2c.Pieces[id],
        _ => tokenizer.Decode([id], skipSpecial: false),
    };
}
