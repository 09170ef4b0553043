using System.Net;
using System.Net.Sockets;

namespace Sweep.Orchestrator.Tests;

/// <summary>A loopback TCP port nobody listens on right now, for the servers and nodes the tests start.</summary>
public static class FreePort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
