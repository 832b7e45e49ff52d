import SpoolLog

// The binary layout of the update events (layout 3; new event kinds, so no layout bump):
//
//   request:   update id str, identity str, header, name str, args optional payloads
//   outcome:   tag u8 (0 success, 1 failure), then optional payloads or a failure
//   WorkflowExecutionUpdateAccepted:  protocol instance id str, accepted request message id str,
//                                     accepted request sequencing event id varint, request
//   WorkflowExecutionUpdateCompleted: update id str, identity str, accepted event id varint, outcome

extension BinaryWriter {
    mutating func updateRequest(_ request: UpdateRequest) {
        string(request.meta.updateID); string(request.meta.identity)
        header(request.input.header); string(request.input.name); payloads(request.input.args)
    }

    mutating func updateOutcome(_ outcome: UpdateOutcome) {
        switch outcome {
        case .success(let result):
            byte(0); payloads(result)
        case .failure(let failure):
            byte(1); failure.encode(into: &self)
        }
    }
}

extension BinaryReader<SpoolError> {
    mutating func updateRequest(_ layout: ValueLayout) throws(SpoolError) -> UpdateRequest {
        let meta = UpdateMeta(updateID: try string(), identity: try string())
        let header = try header(layout)
        return UpdateRequest(meta: meta, input: UpdateInput(name: try string(), args: try optionalPayloads(layout), header: header))
    }

    mutating func updateOutcome(_ layout: ValueLayout) throws(SpoolError) -> UpdateOutcome {
        switch try byte() {
        case 0: return .success(try optionalPayloads(layout))
        case 1: return .failure(try failure(layout))
        case let tag: throw corrupt("\(tag) is not an update outcome tag")
        }
    }
}

extension WorkflowExecutionUpdateAcceptedEventAttributes {
    func encode(into w: inout BinaryWriter) {
        w.string(protocolInstanceID); w.string(acceptedRequestMessageID); w.signed(acceptedRequestSequencingEventID)
        w.updateRequest(acceptedRequest)
    }

    static func decode(from r: inout BinaryReader<SpoolError>, layout: ValueLayout) throws(SpoolError) -> Self {
        Self(protocolInstanceID: try r.string(), acceptedRequestMessageID: try r.string(),
             acceptedRequestSequencingEventID: try r.signed(), acceptedRequest: try r.updateRequest(layout))
    }
}

extension WorkflowExecutionUpdateCompletedEventAttributes {
    func encode(into w: inout BinaryWriter) {
        w.string(meta.updateID); w.string(meta.identity); w.signed(acceptedEventID); w.updateOutcome(outcome)
    }

    static func decode(from r: inout BinaryReader<SpoolError>, layout: ValueLayout) throws(SpoolError) -> Self {
        Self(meta: UpdateMeta(updateID: try r.string(), identity: try r.string()), acceptedEventID: try r.signed(),
             outcome: try r.updateOutcome(layout))
    }
}
