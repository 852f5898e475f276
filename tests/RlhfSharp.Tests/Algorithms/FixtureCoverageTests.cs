using System.Reflection;
using Xunit.Sdk;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>Marks a test class whose tests read fixtures/losses; <see cref="FixtureCoverageTests"/> runs them.</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class LossFixtureTestsAttribute : Attribute;

public class FixtureCoverageTests
{
    /// <summary>
    /// Runs every test (each data row of a theory) of the <see cref="LossFixtureTestsAttribute"/> classes while recording
    /// what they read, then requires every case of losses.json and pinned.json, and every expected value of each case, to
    /// have been read by a test that passed. A case that is listed but that no test checks fails here.
    /// </summary>
    [Fact]
    public void Every_losses_fixture_case_and_expected_value_is_checked_by_a_passing_test()
    {
        var ran = new List<string>();
        using (var reads = FixtureReads.Start())
        {
            foreach (var (test, run) in FixtureTests())
            {
                run(); // a failing fixture test fails this one too: only passing tests count as coverage
                ran.Add(test);
            }
            var missingCases = LossFixtures.CaseNames.Where(n => !reads.CasesRead.Contains(n)).ToList();
            Assert.True(missingCases.Count == 0, "no test reads these cases: " + string.Join(", ", missingCases));
            var missingValues = LossFixtures.CaseNames
                .SelectMany(n => LossFixtures.ExpectedKeys(n).Select(k => n + "/" + k))
                .Where(k => !reads.ExpectedRead.Contains(k)).ToList();
            Assert.True(missingValues.Count == 0, "no test checks these expected values: " + string.Join(", ", missingValues));
        }
        Assert.NotEmpty(ran);
    }

    [Fact]
    public void Case_names_are_unique_across_the_fixture_files()
    {
        var names = LossFixtures.CaseNames.ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    /// <summary>Each [Fact] and each [InlineData]/[MemberData] row of a [Theory] in the marked classes, as a runnable.</summary>
    static IEnumerable<(string Name, Action Run)> FixtureTests()
    {
        var classes = typeof(FixtureCoverageTests).Assembly.GetTypes().Where(t => t.GetCustomAttribute<LossFixtureTestsAttribute>() is not null);
        foreach (var type in classes)
            foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Instance))
            {
                var fact = method.GetCustomAttribute<FactAttribute>();
                if (fact is null || fact.Skip is not null) continue;
                var rows = fact is TheoryAttribute
                    ? method.GetCustomAttributes<DataAttribute>().SelectMany(d => d.GetData(method)).ToList()
                    : [Array.Empty<object>()];
                foreach (var row in rows)
                {
                    var args = method.GetParameters().Select((p, i) => Convert(row[i], p.ParameterType)).ToArray();
                    yield return ($"{type.Name}.{method.Name}({string.Join(", ", args)})", () =>
                    {
                        var instance = Activator.CreateInstance(type);
                        try { method.Invoke(instance, args); }
                        catch (TargetInvocationException e) when (e.InnerException is not null) { throw e.InnerException; }
                        finally { (instance as IDisposable)?.Dispose(); }
                    });
                }
            }
    }

    // xunit converts InlineData values to the parameter type (an int literal for a double parameter); so does this.
    static object? Convert(object? value, Type type)
        => value is null || type.IsInstanceOfType(value) ? value
            : type.IsEnum ? Enum.ToObject(type, value)
            : System.Convert.ChangeType(value, type, System.Globalization.CultureInfo.InvariantCulture);
}
