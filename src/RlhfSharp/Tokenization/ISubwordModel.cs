namespace RlhfSharp.Tokenization;

/// <summary>The <c>model</c> of a tokenizer.json (BPE or Unigram): one pre-tokenized word to ids.</summary>
internal interface ISubwordModel
{
    /// <summary>The pieces, indexed by id (null where the vocabulary has a gap).</summary>
    string?[] Pieces { get; }

    /// <summary>Encodes one pre-tokenized word.</summary>
    int[] EncodeWord(string word);
}
