namespace RlhfSharp.Evaluation;

/// <summary>
/// The Porter stemmer (Porter 1980, "An algorithm for suffix stripping") in NLTK's default <c>NLTK_EXTENSIONS</c>
/// mode, the stemmer of NLTK's <c>meteor_score</c> stem stage.
/// </summary>
/// <remarks>
/// Written from the paper's rules plus NLTK's documented deviations (nltk/stem/porter.py): an irregular-forms table,
/// "ies"/"ied" on four-letter words → "ie", y→i only after a consonant that is not the whole stem, "alli" handled
/// before "bli", extra "fulli" and "logi" rules, a two-letter vowel-consonant stem counting as *o, and words of one
/// or two letters left alone. Input is lower-cased first, as NLTK's <c>stem(word)</c> does.
/// </remarks>
public static class PorterStemmer
{
    // NLTK's table of irregular forms, "reflecting the errors drawn to Martin Porter's attention over 20 years".
    static readonly Dictionary<string, string> Irregular = new()
    {
        ["sky"] = "sky", ["skies"] = "sky", ["dying"] = "die", ["lying"] = "lie", ["tying"] = "tie", ["news"] = "news",
        ["innings"] = "inning", ["inning"] = "inning", ["outings"] = "outing", ["outing"] = "outing",
        ["cannings"] = "canning", ["canning"] = "canning", ["howe"] = "howe",
        ["proceed"] = "proceed", ["exceed"] = "exceed", ["succeed"] = "succeed",
    };

    /// <summary>The stem of <paramref name="word"/> as NLTK's <c>PorterStemmer().stem(word)</c> returns it.</summary>
    public static string Stem(string word)
    {
        string w = word.ToLowerInvariant();
        // NLTK looks the table up with the word as given, not lower-cased.
        if (Irregular.TryGetValue(word, out var irregular)) return irregular;
        if (word.Length <= 2) return w;
        w = Step1a(w);
        w = Step1b(w);
        w = Step1c(w);
        w = Step2(w);
        w = Step3(w);
        w = Step4(w);
        w = Step5a(w);
        return Step5b(w);
    }

    static bool IsConsonant(string w, int i) => w[i] switch
    {
        'a' or 'e' or 'i' or 'o' or 'u' => false,
        'y' => i == 0 || !IsConsonant(w, i - 1),
        _ => true,
    };

    /// <summary>m in [C](VC){m}[V]: the number of vowel→consonant transitions.</summary>
    static int Measure(string stem)
    {
        int m = 0;
        for (int i = 1; i < stem.Length; i++)
            if (!IsConsonant(stem, i - 1) && IsConsonant(stem, i)) m++;
        return m;
    }

    static bool HasPositiveMeasure(string stem) => Measure(stem) > 0;

    static bool ContainsVowel(string stem)
    {
        for (int i = 0; i < stem.Length; i++)
            if (!IsConsonant(stem, i)) return true;
        return false;
    }

    static bool EndsDoubleConsonant(string w) => w.Length >= 2 && w[^1] == w[^2] && IsConsonant(w, w.Length - 1);

    /// <summary>Condition *o: consonant-vowel-consonant, the last not w, x or y; NLTK also accepts a two-letter vowel-consonant word.</summary>
    static bool EndsCvc(string w) =>
        (w.Length >= 3 && IsConsonant(w, w.Length - 3) && !IsConsonant(w, w.Length - 2) && IsConsonant(w, w.Length - 1)
         && w[^1] is not ('w' or 'x' or 'y'))
        || (w.Length == 2 && !IsConsonant(w, 0) && IsConsonant(w, 1));

    /// <summary>
    /// The first rule whose suffix matches decides: if its condition holds on the stem the suffix is replaced,
    /// otherwise the word is returned unchanged and no later rule is tried.
    /// </summary>
    static string ApplyFirst(string w, (string Suffix, string Replacement, Func<string, bool>? Condition)[] rules)
    {
        foreach (var (suffix, replacement, condition) in rules)
            if (w.EndsWith(suffix, StringComparison.Ordinal))
            {
                string stem = w[..^suffix.Length];
                return condition is null || condition(stem) ? stem + replacement : w;
            }
        return w;
    }

    static string Step1a(string w)
    {
        if (w.Length == 4 && w.EndsWith("ies", StringComparison.Ordinal)) return w[..^3] + "ie";
        return ApplyFirst(w, [("sses", "ss", null), ("ies", "i", null), ("ss", "ss", null), ("s", "", null)]);
    }

    static string Step1b(string w)
    {
        if (w.EndsWith("ied", StringComparison.Ordinal)) return w[..^3] + (w.Length == 4 ? "ie" : "i");
        if (w.EndsWith("eed", StringComparison.Ordinal)) return HasPositiveMeasure(w[..^3]) ? w[..^3] + "ee" : w;
        string? stem = null;
        foreach (var suffix in (string[])["ed", "ing"])
            if (w.EndsWith(suffix, StringComparison.Ordinal) && ContainsVowel(w[..^suffix.Length]))
            {
                stem = w[..^suffix.Length];
                break;
            }
        if (stem is null) return w;
        if (stem.EndsWith("at", StringComparison.Ordinal) || stem.EndsWith("bl", StringComparison.Ordinal) || stem.EndsWith("iz", StringComparison.Ordinal))
            return stem + "e";
        if (EndsDoubleConsonant(stem))
            return stem[^1] is 'l' or 's' or 'z' ? stem : stem[..^1];
        return Measure(stem) == 1 && EndsCvc(stem) ? stem + "e" : stem;
    }

    static string Step1c(string w) =>
        ApplyFirst(w, [("y", "i", stem => stem.Length > 1 && IsConsonant(stem, stem.Length - 1))]);

    static readonly (string, string, Func<string, bool>?)[] Step2Rules =
    [
        ("ational", "ate", HasPositiveMeasure), ("tional", "tion", HasPositiveMeasure), ("enci", "ence", HasPositiveMeasure),
        ("anci", "ance", HasPositiveMeasure), ("izer", "ize", HasPositiveMeasure), ("bli", "ble", HasPositiveMeasure),
        ("alli", "al", HasPositiveMeasure), ("entli", "ent", HasPositiveMeasure), ("eli", "e", HasPositiveMeasure),
        ("ousli", "ous", HasPositiveMeasure), ("ization", "ize", HasPositiveMeasure), ("ation", "ate", HasPositiveMeasure),
        ("ator", "ate", HasPositiveMeasure), ("alism", "al", HasPositiveMeasure), ("iveness", "ive", HasPositiveMeasure),
        ("fulness", "ful", HasPositiveMeasure), ("ousness", "ous", HasPositiveMeasure), ("aliti", "al", HasPositiveMeasure),
        ("iviti", "ive", HasPositiveMeasure), ("biliti", "ble", HasPositiveMeasure), ("fulli", "ful", HasPositiveMeasure),
        // NLTK keeps the 'l' of "logi" with the stem so short stems (geo-, theo-) qualify: the measure is of word[..^3].
        ("logi", "log", stem => HasPositiveMeasure(stem + "l")),
    ];

    static string Step2(string w)
    {
        if (w.EndsWith("alli", StringComparison.Ordinal) && HasPositiveMeasure(w[..^4]))
            return Step2(w[..^4] + "al");
        return ApplyFirst(w, Step2Rules);
    }

    static string Step3(string w) => ApplyFirst(w,
    [
        ("icate", "ic", HasPositiveMeasure), ("ative", "", HasPositiveMeasure), ("alize", "al", HasPositiveMeasure),
        ("iciti", "ic", HasPositiveMeasure), ("ical", "ic", HasPositiveMeasure), ("ful", "", HasPositiveMeasure),
        ("ness", "", HasPositiveMeasure),
    ]);

    static bool MeasureAbove1(string stem) => Measure(stem) > 1;

    static string Step4(string w) => ApplyFirst(w,
    [
        ("al", "", MeasureAbove1), ("ance", "", MeasureAbove1), ("ence", "", MeasureAbove1), ("er", "", MeasureAbove1),
        ("ic", "", MeasureAbove1), ("able", "", MeasureAbove1), ("ible", "", MeasureAbove1), ("ant", "", MeasureAbove1),
        ("ement", "", MeasureAbove1), ("ment", "", MeasureAbove1), ("ent", "", MeasureAbove1),
        ("ion", "", stem => Measure(stem) > 1 && stem.Length > 0 && stem[^1] is 's' or 't'),
        ("ou", "", MeasureAbove1), ("ism", "", MeasureAbove1), ("ate", "", MeasureAbove1), ("iti", "", MeasureAbove1),
        ("ous", "", MeasureAbove1), ("ive", "", MeasureAbove1), ("ize", "", MeasureAbove1),
    ]);

    static string Step5a(string w)
    {
        if (!w.EndsWith('e')) return w;
        string stem = w[..^1];
        int m = Measure(stem);
        // Unlike the other steps both rules are tried: (m>1) E → and (m=1 and not *o) E →.
        return m > 1 || (m == 1 && !EndsCvc(stem)) ? stem : w;
    }

    static string Step5b(string w) =>
        w.EndsWith("ll", StringComparison.Ordinal) && Measure(w[..^1]) > 1 ? w[..^1] : w;
}
