using System.Diagnostics;
using System.Text.Json;
using RlhfSharp.Bench;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

// Usage: rlhf-bench <workload> [key=value ...]; prints one JSON line per result (bench/README.md).
// Workloads: peak, bandwidth, train, gen, bf16, rss, ppo-soak. bench/reference/bench.py takes the same arguments.
// Before TorchSharp loads LibTorch: the oneMKL path (RLHF_MKL_INTEL_PATH, issue #17); bench/run.sh runs both.
string mklPath = MklCodePath.Apply();
// As the rlhf command does (HeapReturn): freed tensor memory goes back to the OS; heap=glibc keeps glibc's default.
bool heapReturn = !args.Contains("heap=glibc") && HeapReturn.Apply();
if (args.Length == 0) { Console.Error.WriteLine("usage: rlhf-bench peak|bandwidth|train|gen|bf16|rss|ppo-soak|serve|dpo-memory|decode-profile|load-create|load|tokenize|logprob-memory|ppo-memory [model=..] [lora=0|1] [batch=..] [seq=..] [steps=..] [new=..] [cache=1|0]"); return 2; }
var opts = args.Skip(1).Select(a => a.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
string Opt(string key, string fallback) => opts.TryGetValue(key, out var v) ? v : fallback;
int IntOpt(string key, int fallback) => int.Parse(Opt(key, fallback.ToString()));

int threads = IntOpt("threads", Environment.ProcessorCount);
torch.set_num_threads(threads);
manual_seed(0);
var result = new Dictionary<string, object> { ["impl"] = "ours", ["bench"] = args[0], ["threads"] = threads,
    ["mkl"] = MklCodePath.Active.ToString(), ["mkl_path"] = mklPath, ["mmap_threshold"] = heapReturn ? HeapReturn.ThresholdBytes : 0 };

switch (args[0])
{
    case "exp-underflow": ExpUnderflowWorkload.Run(result, IntOpt("rows", 2044), IntOpt("vocab", 151936), Opt("sigmas", "0.6,5,30"), IntOpt("reps", 3)); break;
    case "head-matmul": HeadMatmulWorkload.Run(result, IntOpt("vocab", 151936), IntOpt("hidden", 896), Opt("chunks", "128,256,384,512,1024,2048")); break;
    case "peak": Workloads.Peak(result, IntOpt("n", 2048), IntOpt("reps", 10)); break;
    case "bandwidth": Workloads.Bandwidth(result, IntOpt("mb", 1024), IntOpt("reps", 10)); break;
    case "train" when Seq2SeqWorkload.Handles(Opt("model", "")): Seq2SeqWorkload.Train(result, Opt("model", ""), IntOpt("batch", 4), IntOpt("seq", 128), IntOpt("steps", 2), IntOpt("warmup", 1)); break;
    case "gen" when Seq2SeqWorkload.Handles(Opt("model", "")): Seq2SeqWorkload.Generate(result, Opt("model", ""), IntOpt("batch", 4), IntOpt("prompt", 64), IntOpt("new", 32), IntOpt("warmup", 1)); break;
    case "train": Workloads.Train(result, Opt("model", "stories260k"), IntOpt("batch", 32), IntOpt("seq", 256), IntOpt("steps", 20), IntOpt("warmup", 3)); break;
    case "rss": Workloads.Rss(result, Opt("model", "stories260k"), IntOpt("batch", 32), IntOpt("seq", 256), IntOpt("steps", 500), IntOpt("gc", 0)); break;
    case "ppo-soak": PpoSoakWorkload.Run(result, IntOpt("steps", 2000), IntOpt("batch", 8), IntOpt("new", 32), IntOpt("every", 100)); break;
    case "gen": Workloads.Generate(result, Opt("model", "stories260k"), IntOpt("batch", 32), IntOpt("prompt", 8), IntOpt("new", 256), Opt("cache", "1") == "1", IntOpt("warmup", 1)); break;
    case "serve": await ServeWorkload.Run(result, IntOpt("streams", 1), IntOpt("requests", 4), IntOpt("new", 128)); break;
    case "dpo-memory": DpoMemoryWorkload.Run(result, Opt("model", "llama45m"), Opt("lora", "0") == "1", IntOpt("batch", 2), IntOpt("prompt", 64), IntOpt("completion", 64), IntOpt("steps", 3)); break;
    case "load-create": LoadWorkload.Create(result, Opt("out", "/tmp/qwen05b-random"), ModelDtype.Parse(Opt("dtype", "float32"), "dtype"),
        LoadWorkload.Qwen05B with { NumLayers = IntOpt("layers", 24), VocabSize = IntOpt("vocab", 151936) }); break;
    case "load": LoadWorkload.Load(result, Opt("model", "/tmp/qwen05b-random"), ModelDtype.Parse(Opt("dtype", "float32"), "dtype"), opts.GetValueOrDefault("smaps")); break;
    case "decode-profile": DecodeProfileWorkload.Run(result, Opt("model", "gpt2"), IntOpt("steps", 10)); break;
    case "bf16": Workloads.Bf16(result, Opt("model", "stories260k"), IntOpt("batch", 32), IntOpt("seq", 256), IntOpt("iters", 5)); break;
    case "tokenize": TokenizeWorkload.Run(result, IntOpt("mb", 1)); break;
    case "adamw-memory": AdamWMemoryWorkload.Run(result, Opt("moments", "float32"), IntOpt("rows", 151936), IntOpt("columns", 896)); break;
    case "real-step": RealStepWorkload.Run(result, Opt("model", "smollm2"), Opt("kind", "sft"), IntOpt("rows", 4), IntOpt("seq", 512), Opt("ckpt", "0") == "1", IntOpt("chunk", 0), IntOpt("steps", 1), Opt("moments", "float32"), IntOpt("layers", 0), Opt("phases", "0") == "1"); break;
    case "ppo-memory": PpoMemoryWorkload.Run(result, Opt("model", "smollm2-135m"), Opt("shared", "0") == "1", IntOpt("prompts", 8), IntOpt("prompt", 64), IntOpt("new", 64), IntOpt("chunk", 0), IntOpt("steps", 1)); break;
    case "logprob-memory": LogprobMemoryWorkload.Run(result, IntOpt("batch", 8), IntOpt("seq", 512), IntOpt("vocab", 151936), IntOpt("hidden", 896), IntOpt("chunk", 256), IntOpt("reps", 2)); break;
    case "zero-memory": ZeroMemoryWorkload.Run(result, IntOpt("zero", 1), IntOpt("rows", 1), IntOpt("seq", 64), IntOpt("steps", 3)); break;
    default: Console.Error.WriteLine($"unknown workload '{args[0]}'"); return 2;
}
// The process's peak resident memory (VmHWM), so every row carries it beside its speed (PyTorch's side: ru_maxrss).
result.TryAdd("peak_rss_mb", ProcessMemory.Mb("VmHWM"));
Console.WriteLine(JsonSerializer.Serialize(result));
return 0;
