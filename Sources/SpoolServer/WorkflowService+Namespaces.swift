import FoundationEssentials
import GRPCCore
import Spool
import SpoolServerProtos

/// Namespaces (register, describe, list, update) and the search attributes of a namespace.
extension WorkflowService {
    func registerNamespace(request: Temporal_Api_Workflowservice_V1_RegisterNamespaceRequest,
                           context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RegisterNamespaceResponse {
        _ = try await engineCall { () async throws(SpoolError) in
            try engine.registerNamespace(request.namespace, description: request.description_p, ownerEmail: request.ownerEmail,
                                         data: request.data,
                                         retention: duration(request.workflowExecutionRetentionPeriod,
                                                             isSet: request.hasWorkflowExecutionRetentionPeriod))
        }
        return Temporal_Api_Workflowservice_V1_RegisterNamespaceResponse()
    }

    func describeNamespace(request: Temporal_Api_Workflowservice_V1_DescribeNamespaceRequest,
                           context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_DescribeNamespaceResponse {
        let info = try await engineCall { () async throws(SpoolError) in
            // By id (Spool's ids are in the list), else by name; an empty name is `default`.
            if request.namespace.isEmpty, !request.id.isEmpty {
                guard let found = engine.listNamespaces().first(where: { $0.id == request.id }) else {
                    throw SpoolError(.namespaceNotFound, "no namespace has the id '\(request.id)'")
                }
                return found
            }
            return try engine.describeNamespace(namespace(request.namespace))
        }
        return describe(info)
    }

    func listNamespaces(request: Temporal_Api_Workflowservice_V1_ListNamespacesRequest,
                        context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_ListNamespacesResponse {
        // Every namespace in one page: they are few, and Spool keeps them all in memory.
        var response = Temporal_Api_Workflowservice_V1_ListNamespacesResponse()
        response.namespaces = engine.listNamespaces().map(describe)
        return response
    }

    func updateNamespace(request: Temporal_Api_Workflowservice_V1_UpdateNamespaceRequest,
                         context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_UpdateNamespaceResponse {
        var update = NamespaceUpdate()
        if request.hasUpdateInfo {
            let info = request.updateInfo
            // Temporal leaves empty strings unchanged.
            if !info.description_p.isEmpty { update.description = info.description_p }
            if !info.ownerEmail.isEmpty { update.ownerEmail = info.ownerEmail }
            if !info.data.isEmpty { update.data = info.data }
        }
        if request.hasConfig, request.config.hasWorkflowExecutionRetentionTtl {
            update.retention = .some(duration(request.config.workflowExecutionRetentionTtl, isSet: true))
        }
        let info = try await engineCall { () async throws(SpoolError) in try engine.updateNamespace(request.namespace, update) }
        let described = describe(info)
        var response = Temporal_Api_Workflowservice_V1_UpdateNamespaceResponse()
        response.namespaceInfo = described.namespaceInfo
        response.config = described.config
        return response
    }

    func getSearchAttributes(request: Temporal_Api_Workflowservice_V1_GetSearchAttributesRequest,
                             context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_GetSearchAttributesResponse {
        // The request names no namespace: the default one's attributes, with the predefined ones.
        let custom = try await engineCall { () async throws(SpoolError) in try engine.searchAttributes() }
        var response = Temporal_Api_Workflowservice_V1_GetSearchAttributesResponse()
        response.keys = searchAttributeTypes(predefinedSearchAttributes.merging(custom) { $1 })
        return response
    }

    /// Temporal's DescribeNamespaceResponse of a namespace.
    func describe(_ info: NamespaceInfo) -> Temporal_Api_Workflowservice_V1_DescribeNamespaceResponse {
        var protoInfo = Temporal_Api_Namespace_V1_NamespaceInfo()
        protoInfo.name = info.name
        protoInfo.id = info.id
        protoInfo.description_p = info.description
        protoInfo.ownerEmail = info.ownerEmail
        protoInfo.data = info.data
        protoInfo.state = Temporal_Api_Enums_V1_NamespaceState(rawValue: Int(info.state.rawValue)) ?? .unspecified
        var config = Temporal_Api_Namespace_V1_NamespaceConfig()
        if let retention = info.retention ?? engine.configuration.closedRunRetention { config.workflowExecutionRetentionTtl = retention.proto }
        var response = Temporal_Api_Workflowservice_V1_DescribeNamespaceResponse()
        response.namespaceInfo = protoInfo
        response.config = config
        return response
    }
}

/// Temporal's OperatorService, the search-attribute calls (`temporal operator search-attribute
/// create|list|remove`).
struct OperatorService: Temporal_Api_Operatorservice_V1_OperatorService.SimpleServiceProtocol {
    let engine: SpoolEngine

    func addSearchAttributes(request: Temporal_Api_Operatorservice_V1_AddSearchAttributesRequest,
                             context: ServerContext) async throws -> Temporal_Api_Operatorservice_V1_AddSearchAttributesResponse {
        var attributes: [String: IndexedValueType] = [:]
        for (name, type) in request.searchAttributes {
            guard let known = IndexedValueType(rawValue: UInt8(clamping: type.rawValue)) else {
                throw RPCError(code: .invalidArgument, message: "search attribute \(name) has an unknown type (\(type.rawValue))")
            }
            attributes[name] = known
        }
        try await engineCall { () async throws(SpoolError) in
            try engine.addSearchAttributes(namespace: namespace(request.namespace), attributes)
        }
        return Temporal_Api_Operatorservice_V1_AddSearchAttributesResponse()
    }

    func removeSearchAttributes(request: Temporal_Api_Operatorservice_V1_RemoveSearchAttributesRequest,
                                context: ServerContext) async throws -> Temporal_Api_Operatorservice_V1_RemoveSearchAttributesResponse {
        try await engineCall { () async throws(SpoolError) in
            try engine.removeSearchAttributes(namespace: namespace(request.namespace), request.searchAttributes)
        }
        return Temporal_Api_Operatorservice_V1_RemoveSearchAttributesResponse()
    }

    func listSearchAttributes(request: Temporal_Api_Operatorservice_V1_ListSearchAttributesRequest,
                              context: ServerContext) async throws -> Temporal_Api_Operatorservice_V1_ListSearchAttributesResponse {
        let custom = try await engineCall { () async throws(SpoolError) in
            try engine.searchAttributes(namespace: namespace(request.namespace))
        }
        var response = Temporal_Api_Operatorservice_V1_ListSearchAttributesResponse()
        response.customAttributes = searchAttributeTypes(custom)
        response.systemAttributes = searchAttributeTypes(predefinedSearchAttributes)
        return response
    }
}

/// The predefined attributes queries may name, with their types.
let predefinedSearchAttributes: [String: IndexedValueType] = Dictionary(
    uniqueKeysWithValues: VisibilityQuery.predefinedAttributes.map { ($0.name, $0.type) })

func searchAttributeTypes(_ types: [String: IndexedValueType]) -> [String: Temporal_Api_Enums_V1_IndexedValueType] {
    types.mapValues { Temporal_Api_Enums_V1_IndexedValueType(rawValue: Int($0.rawValue)) ?? .unspecified }
}
