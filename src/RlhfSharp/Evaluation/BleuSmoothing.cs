namespace RlhfSharp.Evaluation;

/// <summary>
/// What BLEU does with an n-gram order that has no matches (sacreBLEU's names; Chen &amp; Cherry 2014 survey them).
/// Without smoothing one empty order makes the geometric mean zero, which is why sentence-level BLEU needs one.
/// </summary>
public enum BleuSmoothing
{
    /// <summary>No smoothing: an order with zero matches gives BLEU 0.</summary>
    None,
    /// <summary>Zero counts become <c>value / total</c> (default value 0.1). Equals NLTK's <c>SmoothingFunction().method1</c>.</summary>
    Floor,
    /// <summary>Adds <c>k</c> (default 1) to matches and totals of orders 2 and up (Lin &amp; Och 2004; NLTK method2).</summary>
    AddK,
    /// <summary>mteval-v13a: the k-th empty order gets precision <c>1 / (2^k · total)</c>. sacreBLEU's default.</summary>
    Exp,
}
