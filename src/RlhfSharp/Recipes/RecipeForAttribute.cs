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
}
