using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>Values from sacreBLEU's test suite, github.com/mjpost/sacrebleu test/test_ter.py (tolerance 1e-3 as there).</summary>
public sealed class TerEvaluationTests
{
    [Theory]
    [InlineData("aaaa bbbb cccc dddd", "aaaa bbbb cccc dddd", 0.0)] // perfect match
    [InlineData("dddd eeee ffff", "aaaa bbbb cccc", 1.0)]           // no overlap
    [InlineData("", "a", 1.0)]                                      // empty hypothesis
    [InlineData("d e f g h a b c", "a b c d e f g h", 1.0 / 8)]     // a single shift fixes it
    public void Ter_matches_sacrebleu(string hyp, string reference, double expected) =>
        Assert.Equal(100 * expected, Ter.Corpus([hyp], [[reference]]).Score, 1e-3);

    [Fact]
    public void Realistic_wmt_dev_example_gives_0_136()
    {
        // The WMT 2019 dev data case of test_ter.py.
        string[] hyps =
        [
            "wählen Sie \" Bild neu berechnen , \" um beim Ändern der Bildgröße Pixel hinzuzufügen oder zu entfernen , damit das Bild ungefähr dieselbe Größe aufweist wie die andere Größe .",
            "wenn Sie alle Aufgaben im aktuellen Dokument aktualisieren möchten , wählen Sie im Menü des Aufgabenbedienfelds die Option \" Alle Aufgaben aktualisieren . \"",
            "klicken Sie auf der Registerkarte \" Optionen \" auf die Schaltfläche \" Benutzerdefiniert \" und geben Sie Werte für \" Fehlerkorrektur-Level \" und \" Y / X-Verhältnis \" ein .",
            "Sie können beispielsweise ein Dokument erstellen , das ein Auto über die Bühne enthält .",
            "wählen Sie im Dialogfeld \" Neu aus Vorlage \" eine Vorlage aus und klicken Sie auf \" Neu . \"",
        ];
        string[] refs =
        [
            "wählen Sie \" Bild neu berechnen , \" um beim Ändern der Bildgröße Pixel hinzuzufügen oder zu entfernen , damit die Darstellung des Bildes in einer anderen Größe beibehalten wird .",
            "wenn Sie alle Aufgaben im aktuellen Dokument aktualisieren möchten , wählen Sie im Menü des Aufgabenbedienfelds die Option \" Alle Aufgaben aktualisieren . \"",
            "klicken Sie auf der Registerkarte \" Optionen \" auf die Schaltfläche \" Benutzerdefiniert \" und geben Sie für \" Fehlerkorrektur-Level \" und \" Y / X-Verhältnis \" niedrigere Werte ein .",
            "Sie können beispielsweise ein Dokument erstellen , das ein Auto enthalt , das sich über die Bühne bewegt .",
            "wählen Sie im Dialogfeld \" Neu aus Vorlage \" eine Vorlage aus und klicken Sie auf \" Neu . \"",
        ];
        Assert.Equal(13.6, Ter.Corpus(hyps, SacreBleu.FromStreams([refs])).Score, 1e-3);
    }
}
