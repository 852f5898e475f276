using System.Runtime.InteropServices;

namespace RlhfSharp.Distributed;

/// <summary>
/// The few MPI calls data-parallel training needs, bound to Open MPI's <c>libmpi.so.40</c> (Debian's
/// <c>libopenmpi3</c>). Open MPI's handles (<c>MPI_COMM_WORLD</c>, <c>MPI_FLOAT</c>, <c>MPI_SUM</c>, …) are macros for
/// the addresses of global objects (<c>&amp;ompi_mpi_comm_world</c>, …), so they are looked up as exported symbols.
/// Nothing here is touched, and libmpi is never loaded, unless the process was started by <c>mpirun</c>.
/// </summary>
static unsafe class MpiNative
{
    const string Lib = "libmpi.so.40";

    /// <summary>Open MPI's <c>MPI_IN_PLACE</c> is <c>(void*)1</c> (mpi.h).</summary>
    public static readonly IntPtr InPlace = 1;

    [DllImport(Lib)] public static extern int MPI_Initialized(out int flag);
    [DllImport(Lib)] public static extern int MPI_Init(IntPtr argc, IntPtr argv);
    [DllImport(Lib)] public static extern int MPI_Finalize();
    [DllImport(Lib)] public static extern int MPI_Finalized(out int flag);
    [DllImport(Lib)] public static extern int MPI_Comm_rank(IntPtr comm, out int rank);
    [DllImport(Lib)] public static extern int MPI_Comm_size(IntPtr comm, out int size);
    [DllImport(Lib)] public static extern int MPI_Allreduce(IntPtr sendbuf, void* recvbuf, int count, IntPtr datatype, IntPtr op, IntPtr comm);
    [DllImport(Lib)] public static extern int MPI_Reduce_scatter_block(void* sendbuf, void* recvbuf, int recvcount, IntPtr datatype, IntPtr op, IntPtr comm);
    [DllImport(Lib)] public static extern int MPI_Allgather(void* sendbuf, int sendcount, IntPtr sendtype, void* recvbuf, int recvcount, IntPtr recvtype, IntPtr comm);
    [DllImport(Lib)] public static extern int MPI_Gather(void* sendbuf, int sendcount, IntPtr sendtype, void* recvbuf, int recvcount, IntPtr recvtype, int root, IntPtr comm);
    [DllImport(Lib)] public static extern int MPI_Barrier(IntPtr comm);
    [DllImport(Lib)] public static extern int MPI_Abort(IntPtr comm, int errorcode);

    [DllImport("libc", EntryPoint = "dlopen")] static extern IntPtr DlOpen(string file, int mode);
    const int RtldNow = 0x2, RtldGlobal = 0x100;

    /// <summary>
    /// Loads libmpi into the global symbol namespace (<c>RTLD_GLOBAL</c>, as mpi4py does): Open MPI's plugins
    /// (<c>mca_*.so</c>) resolve libmpi's symbols from there, and .NET's own loader opens libraries <c>RTLD_LOCAL</c>.
    /// </summary>
    public static IntPtr Load()
    {
        var library = DlOpen(Lib, RtldNow | RtldGlobal);
        if (library == IntPtr.Zero) throw new RlhfException($"this process was started by mpirun but {Lib} (Open MPI) cannot be loaded: install libopenmpi-dev (Debian: apt-get install openmpi-bin libopenmpi-dev).");
        return library;
    }

    /// <summary>The address of one of Open MPI's predefined handles, e.g. <c>ompi_mpi_comm_world</c>.</summary>
    public static IntPtr Handle(IntPtr library, string symbol) => NativeLibrary.GetExport(library, symbol);
}
