using System.Diagnostics;

namespace RlhfSharp.Tests.Distributed;

/// <summary>
/// Two "machines" on this one: network namespaces joined by a veth pair (10.77.N.1 and 10.77.N.2), each with its own
/// hostname, and a stand-in for ssh that starts Open MPI's daemon in the other namespace. Needs root (CI runs as root).
/// </summary>
public sealed class NetworkNamespaces : IDisposable
{
    readonly string a, b;
    public string Dir { get; }
    public string Hostfile => Path.Combine(Dir, "hosts");
    public string Agent => Path.Combine(Dir, "agent");
    public string Subnet { get; }
    public string HostA { get; }

    public NetworkNamespaces(string dir)
    {
        Dir = dir;
        Directory.CreateDirectory(dir);
        int n = Random.Shared.Next(1, 250);
        string id = Guid.NewGuid().ToString("N")[..6];
        (a, b) = ($"rlhfA{id}", $"rlhfB{id}");
        (Subnet, HostA) = ($"10.77.{n}.0/24", $"10.77.{n}.1");
        string hostB = $"10.77.{n}.2";
        Ip($"netns add {a}");
        Ip($"netns add {b}");
        Ip($"link add va{id} type veth peer name vb{id}");
        Ip($"link set va{id} netns {a}");
        Ip($"link set vb{id} netns {b}");
        Ip($"-n {a} addr add {HostA}/24 dev va{id}");
        Ip($"-n {b} addr add {hostB}/24 dev vb{id}");
        foreach (var (ns, dev) in new[] { (a, $"va{id}"), (b, $"vb{id}") }) { Ip($"-n {ns} link set {dev} up"); Ip($"-n {ns} link set lo up"); }
        File.WriteAllText(Hostfile, $"{HostA} slots=1\n{hostB} slots=1\n");
        File.WriteAllText(Agent, $$"""
            #!/bin/sh
            # ssh's stand-in for mpirun: "agent HOST COMMAND..." runs COMMAND in HOST's namespace under its own hostname.
            host=$1; shift
            case "$host" in
              {{HostA}}) ns={{a}}; name=node-a ;;
              {{hostB}}) ns={{b}}; name=node-b ;;
              *) echo "agent: unknown host $host" >&2; exit 1 ;;
            esac
            exec ip netns exec "$ns" unshare --uts sh -c "hostname $name; $*"
            """);
        File.SetUnixFileMode(Agent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>Runs <c>mpirun</c> in the first namespace with one rank per namespace, TCP over the veth pair only.</summary>
    public MpiRun.Result MpiRun2(string program)
    {
        string mpirun = $"mpirun -np 2 --hostfile {Hostfile} --allow-run-as-root --mca plm_rsh_agent {Agent} --mca btl tcp,self " +
            $"--mca btl_tcp_if_include {Subnet} --mca oob_tcp_if_include {Subnet} {program}";
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var x in new[] { "netns", "exec", a, "unshare", "--uts", "sh", "-c", $"hostname node-a; {mpirun}" }) psi.ArgumentList.Add(x);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException(mpirun); }
        return new MpiRun.Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Bytes that left the first namespace's end of the veth pair.</summary>
    public long BytesSentFromA()
    {
        var r = Run("ip", $"-n {a} -s -j link show");
        using var doc = System.Text.Json.JsonDocument.Parse(r);
        return doc.RootElement.EnumerateArray().Where(l => l.GetProperty("ifname").GetString()!.StartsWith("va"))
            .Sum(l => l.GetProperty("stats64").GetProperty("tx").GetProperty("bytes").GetInt64());
    }

    static void Ip(string args) => Run("ip", args);

    static string Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd(), error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {args}: {error.Trim()} (network namespaces need root and iproute2)");
        return output;
    }

    public void Dispose()
    {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        foreach (var ns in new[] { a, b }) try { Ip($"netns delete {ns}"); } catch (InvalidOperationException) { }
    }
}
