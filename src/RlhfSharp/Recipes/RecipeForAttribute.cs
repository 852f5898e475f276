namespace RlhfSharp.Recipes;

/// <summary>
/// Marks a recipe type with the commands that read it, so a recipe error can say which command takes which keys (a
/// pipeline recipe given to a stage command is told apart from a typo).
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class RecipeForAttribute(string reader) : Attribute
{
    /// <summary>The commands, as a user types them: <c>rlhf pipeline</c>.</summary>
    public string Reader { get; } = reader;

    /// <summary>
    /// A recipe type whose files this one also reads: the keys both take (with the same type) are kept, the rest are
    /// left to that type's commands with a note. The stage commands read the pipeline's recipe this way, so one file
    /// (recipes/kinder-stories.json) serves <c>rlhf pipeline</c> and <c>rlhf sft|rm|ppo|…</c>.
    /// </summary>
    public Type? Adopts { get; set; }
}
