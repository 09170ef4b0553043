using Akka.Actor;
using Akka.Serialization;

namespace Sweep.Protocol.Serialization;

/// <summary>
/// Takes the place of Akka's type-name JSON serializer (id 1, bound to System.Object) on cluster
/// nodes: nothing outside the sweep serializer's allow-list (and Akka's own system messages) is
/// ever written to the wire, and a payload that claims id 1 is refused instead of being turned
/// into whatever type its manifest names.
/// </summary>
public sealed class RefusingSerializer : Serializer
{
    public RefusingSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    /// <summary>Akka passes the settings it keeps for the serializer it replaces (serialization-settings.json); none apply.</summary>
    public RefusingSerializer(ExtendedActorSystem system, Akka.Configuration.Config settings) : base(system)
    {
    }

    public override int Identifier => 1;

    public override bool IncludeManifest => false;

    public override byte[] ToBinary(object obj) =>
        throw new NotSupportedException($"{obj.GetType().FullName} is not in the sweep serializer's allow-list: refusing to send it");

    public override object FromBinary(byte[] bytes, Type? type) =>
        throw new System.Runtime.Serialization.SerializationException("a payload for serializer 1 (type-name JSON) was refused: only the sweep serializer's allow-list is accepted on the wire");
}
