/// <summary>
/// This process's memory from /proc/self/status, in MB: <c>VmRSS</c> (resident now) or <c>VmHWM</c> (the peak so far).
/// The kernel pads the number with spaces after the tab only below 10⁷ kB, so the line is split on both.
/// </summary>
static class ProcessMemory
{
    public static double Mb(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":"));
        return double.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
    }
}
